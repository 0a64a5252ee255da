//! Bytes to text: content-type sniffing, charset decoding, character references.

use std::borrow::Cow;

/// Leading bytes looked at when sniffing a `<meta charset>` (the HTML spec's prescan length).
const CHARSET_PRESCAN_BYTES: usize = 1024;

/// True when the content type is text/html or application/xhtml+xml, or (no content type) the
/// body starts (after whitespace/BOM) with `<!doctype html` or `<html` case-insensitively.
pub fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    if let Some(essence) = content_type.map(mime_essence).filter(|e| !e.is_empty()) {
        return essence.eq_ignore_ascii_case("text/html")
            || essence.eq_ignore_ascii_case("application/xhtml+xml");
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let body = &body[start..];
    starts_with_ignore_case(body, b"<!doctype html") || starts_with_ignore_case(body, b"<html")
}

/// Decodes the body: the charset from the content type, else (for bodies that are not valid
/// UTF-8) a `<meta charset>` near the start, else UTF-8 lossily. UTF-8 and the windows-1252
/// family (ISO-8859-1, ASCII, which the web treats as windows-1252) are decoded exactly; any
/// other charset is read as UTF-8 lossily. A UTF-8 byte order mark wins over everything.
pub fn decode(content_type: Option<&str>, body: &[u8]) -> String {
    if let Some(rest) = body.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8_lossy(rest).into_owned();
    }
    let declared = content_type.and_then(charset_parameter);
    let charset = match declared {
        Some(label) => Some(label),
        None => match std::str::from_utf8(body) {
            Ok(text) => return text.to_owned(),
            Err(_) => sniff_meta_charset(body),
        },
    };
    if charset.is_some_and(|label| is_windows_1252(&label)) {
        decode_windows_1252(body)
    } else {
        String::from_utf8_lossy(body).into_owned()
    }
}

pub(crate) fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

pub(crate) fn collapse_whitespace(text: &str) -> String {
    let mut collapsed = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !collapsed.is_empty() {
            collapsed.push(' ');
        }
        collapsed.push_str(word);
    }
    collapsed
}

fn mime_essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

fn charset_parameter(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches(['"', '\'']).trim().to_owned())
            .filter(|label| !label.is_empty())
    })
}

/// A simplified form of the HTML encoding prescan: the first `charset=` label in the first
/// kilobyte (`<meta charset="…">` or `<meta http-equiv content="…; charset=…">`).
fn sniff_meta_charset(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(CHARSET_PRESCAN_BYTES)];
    let lower = head.to_ascii_lowercase();
    let at = lower.windows(8).position(|w| w == b"charset=")? + 8;
    let label: String = lower[at..]
        .iter()
        .skip_while(|b| matches!(b, b'"' | b'\'' | b' '))
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
        .map(|&b| char::from(b))
        .collect();
    non_empty(label)
}

/// Labels the Encoding Standard maps to windows-1252.
fn is_windows_1252(label: &str) -> bool {
    const LABELS: [&str; 17] = [
        "ansi_x3.4-1968",
        "ascii",
        "cp1252",
        "cp819",
        "csisolatin1",
        "ibm819",
        "iso-8859-1",
        "iso-ir-100",
        "iso8859-1",
        "iso88591",
        "iso_8859-1",
        "iso_8859-1:1987",
        "l1",
        "latin1",
        "us-ascii",
        "windows-1252",
        "x-cp1252",
    ];
    LABELS.iter().any(|known| label.eq_ignore_ascii_case(known))
}

/// Code points of windows-1252 bytes 0x80..=0x9F; the rest of the range is Latin-1.
const WINDOWS_1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}', '\u{8F}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}', '\u{178}',
];

fn windows_1252_char(byte: u8) -> char {
    match byte {
        0x80..=0x9F => WINDOWS_1252_HIGH[usize::from(byte - 0x80)],
        _ => char::from(byte),
    }
}

fn decode_windows_1252(body: &[u8]) -> String {
    body.iter().map(|&b| windows_1252_char(b)).collect()
}

/// Decodes character references (`&amp;`, `&#39;`, `&#x2014;`, common named ones). Numeric
/// references follow the HTML rules (windows-1252 remapping of 0x80..=0x9F, U+FFFD for
/// invalid code points, `;` optional); named ones need their `;` and unknown names stay as
/// written.
pub(crate) fn decode_entities(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut decoded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        decoded.push_str(&rest[..amp]);
        let reference = &rest[amp + 1..];
        match decode_reference(reference, &mut decoded) {
            Some(consumed) => rest = &reference[consumed..],
            None => {
                decoded.push('&');
                rest = reference;
            }
        }
    }
    decoded.push_str(rest);
    Cow::Owned(decoded)
}

/// Decodes the reference at the start of `text` (just after `&`) into `out`; returns the
/// number of bytes it used, or None when `text` does not start with a known reference.
fn decode_reference(text: &str, out: &mut String) -> Option<usize> {
    if let Some(number) = text.strip_prefix('#') {
        let (digits_start, radix) = match number.as_bytes().first() {
            Some(b'x' | b'X') => (1, 16),
            _ => (0, 10),
        };
        let digits = &number[digits_start..];
        let len = digits
            .bytes()
            .take_while(|b| char::from(*b).is_digit(radix))
            .count();
        if len == 0 {
            return None;
        }
        // Anything past U+10FFFF is invalid; long runs of digits must not overflow.
        let code = u32::from_str_radix(&digits[..len.min(8)], radix).unwrap_or(u32::MAX);
        let code = if len > 8 { u32::MAX } else { code };
        out.push(match code {
            0x80..=0x9F => WINDOWS_1252_HIGH[(code - 0x80) as usize],
            0 => '\u{FFFD}',
            _ => char::from_u32(code).unwrap_or('\u{FFFD}'),
        });
        let semicolon = usize::from(digits[len..].starts_with(';'));
        return Some(1 + digits_start + len + semicolon);
    }
    let name_len = text
        .bytes()
        .take(MAX_ENTITY_NAME_LEN + 1)
        .take_while(u8::is_ascii_alphanumeric)
        .count();
    if name_len == 0 || !text[name_len..].starts_with(';') {
        return None;
    }
    let name = &text[..name_len];
    let (_, value) = NAMED_ENTITIES.iter().find(|(known, _)| *known == name)?;
    out.push_str(value);
    Some(name_len + 1)
}

const MAX_ENTITY_NAME_LEN: usize = 14;

/// The named references that actually turn up in titles, descriptions and URLs.
const NAMED_ENTITIES: &[(&str, &str)] = &[
    ("amp", "&"),
    ("lt", "<"),
    ("gt", ">"),
    ("quot", "\""),
    ("apos", "'"),
    ("nbsp", "\u{A0}"),
    ("ensp", "\u{2002}"),
    ("emsp", "\u{2003}"),
    ("thinsp", "\u{2009}"),
    ("shy", "\u{AD}"),
    ("zwnj", "\u{200C}"),
    ("zwj", "\u{200D}"),
    ("copy", "©"),
    ("reg", "®"),
    ("trade", "™"),
    ("hellip", "…"),
    ("mdash", "—"),
    ("ndash", "–"),
    ("lsquo", "‘"),
    ("rsquo", "’"),
    ("sbquo", "‚"),
    ("ldquo", "“"),
    ("rdquo", "”"),
    ("bdquo", "„"),
    ("laquo", "«"),
    ("raquo", "»"),
    ("lsaquo", "‹"),
    ("rsaquo", "›"),
    ("middot", "·"),
    ("bull", "•"),
    ("euro", "€"),
    ("pound", "£"),
    ("yen", "¥"),
    ("cent", "¢"),
    ("sect", "§"),
    ("para", "¶"),
    ("deg", "°"),
    ("plusmn", "±"),
    ("times", "×"),
    ("divide", "÷"),
    ("frac12", "½"),
    ("larr", "←"),
    ("rarr", "→"),
    ("harr", "↔"),
    ("rArr", "⇒"),
    ("aacute", "á"),
    ("agrave", "à"),
    ("acirc", "â"),
    ("auml", "ä"),
    ("aring", "å"),
    ("aelig", "æ"),
    ("ccedil", "ç"),
    ("eacute", "é"),
    ("egrave", "è"),
    ("ecirc", "ê"),
    ("iacute", "í"),
    ("ntilde", "ñ"),
    ("oacute", "ó"),
    ("ouml", "ö"),
    ("oslash", "ø"),
    ("uacute", "ú"),
    ("uuml", "ü"),
    ("szlig", "ß"),
    ("Eacute", "É"),
    ("ZeroWidthSpace", "\u{200B}"),
    ("NoBreak", "\u{2060}"),
    ("hairsp", "\u{200A}"),
    ("lrm", "\u{200E}"),
    ("rlm", "\u{200F}"),
    ("iexcl", "¡"),
    ("iquest", "¿"),
    ("uarr", "↑"),
    ("darr", "↓"),
    ("lArr", "⇐"),
    ("hArr", "⇔"),
    ("le", "≤"),
    ("ge", "≥"),
    ("ne", "≠"),
    ("minus", "−"),
    ("infin", "∞"),
    ("asymp", "≈"),
    ("micro", "µ"),
    ("prime", "′"),
    ("Prime", "″"),
    ("dagger", "†"),
    ("Dagger", "‡"),
    ("permil", "‰"),
    ("frac14", "¼"),
    ("frac34", "¾"),
    ("sup2", "²"),
    ("sup3", "³"),
    ("ordm", "º"),
    ("ordf", "ª"),
    ("curren", "¤"),
    ("brvbar", "¦"),
    ("not", "¬"),
    ("macr", "¯"),
    ("acute", "´"),
    ("cedil", "¸"),
    ("uml", "¨"),
    ("Auml", "Ä"),
    ("Ouml", "Ö"),
    ("Uuml", "Ü"),
    ("Aring", "Å"),
    ("AElig", "Æ"),
    ("Oslash", "Ø"),
    ("Ntilde", "Ñ"),
    ("Ccedil", "Ç"),
    ("igrave", "ì"),
    ("icirc", "î"),
    ("iuml", "ï"),
    ("ograve", "ò"),
    ("ocirc", "ô"),
    ("otilde", "õ"),
    ("ugrave", "ù"),
    ("ucirc", "û"),
    ("yacute", "ý"),
    ("yuml", "ÿ"),
    ("atilde", "ã"),
    ("euml", "ë"),
    ("Agrave", "À"),
    ("Aacute", "Á"),
    ("Egrave", "È"),
    ("oelig", "œ"),
    ("OElig", "Œ"),
    ("scaron", "š"),
    ("Scaron", "Š"),
    ("thorn", "þ"),
    ("eth", "ð"),
    ("alpha", "α"),
    ("beta", "β"),
    ("gamma", "γ"),
    ("delta", "δ"),
    ("lambda", "λ"),
    ("mu", "μ"),
    ("pi", "π"),
    ("sigma", "σ"),
    ("Omega", "Ω"),
    ("check", "✓"),
    ("star", "☆"),
];

fn starts_with_ignore_case(haystack: &[u8], prefix: &[u8]) -> bool {
    haystack
        .get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}
