//! The storage format read into a small XML tree (strictly, or recovering from malformed
//! input), and the escaping helpers the renderer shares.

use std::borrow::Cow;

use quick_xml::events::{BytesRef, BytesStart, Event};

use super::MAX_STORAGE_DEPTH;

#[derive(Debug)]
pub(super) struct XmlElement {
    /// Qualified, ASCII-lowercased (`p`, `ac:structured-macro`).
    pub(super) name: String,
    /// Qualified lowercased names, values with XML escapes resolved.
    pub(super) attributes: Vec<(String, String)>,
    pub(super) children: Vec<XmlNode>,
}

#[derive(Debug)]
pub(super) enum XmlNode {
    Element(XmlElement),
    /// Text still escaped as in the source (valid HTML text).
    Markup(String),
    /// Raw text (CDATA).
    Text(String),
}

impl XmlElement {
    pub(super) fn new(name: String, attributes: Vec<(String, String)>) -> Self {
        Self {
            name,
            attributes,
            children: Vec::new(),
        }
    }

    pub(super) fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub(super) fn child(&self, name: &str) -> Option<&XmlElement> {
        self.elements().find(|element| element.name == name)
    }

    pub(super) fn elements(&self) -> impl Iterator<Item = &XmlElement> {
        self.children.iter().filter_map(|child| match child {
            XmlNode::Element(element) => Some(element),
            _ => None,
        })
    }

    /// The text content, unescaped (`<br>` as a newline).
    pub(super) fn text(&self) -> String {
        let mut text = String::new();
        self.collect_text(&mut text);
        text
    }

    pub(super) fn collect_text(&self, out: &mut String) {
        for child in &self.children {
            match child {
                XmlNode::Element(element) if element.name == "br" => out.push('\n'),
                XmlNode::Element(element) => {
                    element.collect_text(out);
                    if matches!(element.name.as_str(), "p" | "div" | "li" | "tr") {
                        out.push('\n');
                    }
                }
                XmlNode::Markup(markup) => out.push_str(&unescape(markup)),
                XmlNode::Text(text) => out.push_str(text),
            }
        }
    }
}

pub(super) fn parse_storage(storage: &str, strict: bool) -> Result<XmlElement, String> {
    let mut reader = quick_xml::Reader::from_str(storage);
    {
        let config = reader.config_mut();
        config.check_end_names = strict;
        config.allow_unmatched_ends = !strict;
        config.expand_empty_elements = false;
        config.trim_text(false);
    }
    let mut stack = vec![XmlElement::new(String::new(), Vec::new())];
    // Open elements beyond MAX_STORAGE_DEPTH: not kept, their content goes to the ancestor.
    let mut flattened = 0usize;
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(error) => {
                if strict {
                    return Err(error.to_string());
                }
                let position = usize::try_from(reader.error_position()).unwrap_or(storage.len());
                if let (Some(rest), Some(top)) = (storage.get(position..), stack.last_mut()) {
                    top.children.push(XmlNode::Text(strip_tags(rest)));
                }
                break;
            }
        };
        match event {
            Event::Start(start) => {
                if stack.len() > MAX_STORAGE_DEPTH {
                    flattened += 1;
                } else {
                    stack.push(element_of(&start));
                }
            }
            Event::Empty(start) => {
                if let Some(top) = stack.last_mut() {
                    top.children.push(XmlNode::Element(element_of(&start)));
                }
            }
            Event::End(end) => {
                if flattened > 0 {
                    flattened -= 1;
                    continue;
                }
                let name = lowercase_name(end.name().as_ref());
                let Some(position) = stack.iter().rposition(|open| open.name == name) else {
                    if strict {
                        return Err(format!("unexpected end tag </{name}>"));
                    }
                    continue;
                };
                if position == 0 {
                    if strict {
                        return Err(format!("unexpected end tag </{name}>"));
                    }
                    continue;
                }
                if strict && position != stack.len() - 1 {
                    return Err(format!("mismatched end tag </{name}>"));
                }
                close_to(&mut stack, position);
            }
            Event::Text(text) => {
                if let Some(top) = stack.last_mut() {
                    let markup = text.replace('<', "&lt;");
                    top.children.push(XmlNode::Markup(markup));
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(top) = stack.last_mut() {
                    top.children
                        .push(XmlNode::Markup(reference_markup(&reference)));
                }
            }
            Event::CData(data) => {
                if let Some(top) = stack.last_mut() {
                    top.children.push(XmlNode::Text(data.to_string()));
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if strict && (stack.len() > 1 || flattened > 0) {
        let name = stack
            .last()
            .map(|open| open.name.clone())
            .unwrap_or_default();
        return Err(format!("unclosed element <{name}>"));
    }
    close_to(&mut stack, 1);
    Ok(stack
        .pop()
        .unwrap_or_else(|| XmlElement::new(String::new(), Vec::new())))
}

/// Closes the open elements from the top of the stack down to `position` (inclusive),
/// attaching each to its parent.
pub(super) fn close_to(stack: &mut Vec<XmlElement>, position: usize) {
    while stack.len() > position.max(1) {
        if let Some(closed) = stack.pop() {
            if let Some(parent) = stack.last_mut() {
                parent.children.push(XmlNode::Element(closed));
            }
        }
    }
}

pub(super) fn lowercase_name(name: &str) -> String {
    name.to_ascii_lowercase()
}

pub(super) fn element_of(start: &BytesStart<'_>) -> XmlElement {
    let attributes = start
        .attributes()
        .with_checks(false)
        .flatten()
        .map(|attribute| {
            (
                lowercase_name(attribute.key.as_ref()),
                unescape(&attribute.value).into_owned(),
            )
        })
        .collect();
    XmlElement::new(lowercase_name(start.name().as_ref()), attributes)
}

/// An entity or character reference as HTML markup (the HTML parser resolves it).
pub(super) fn reference_markup(reference: &BytesRef<'_>) -> String {
    let name: &str = reference;
    let valid = match name.strip_prefix('#') {
        Some(number) => match number.strip_prefix(['x', 'X']) {
            Some(hex) => !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()),
            None => !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()),
        },
        None => !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
    };
    if valid {
        format!("&{name};")
    } else {
        format!("&amp;{};", escape_html(name))
    }
}

/// Rough text of a malformed tail: tags dropped, CDATA markers removed.
pub(super) fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    let text = text.replace("<![CDATA[", "").replace("]]>", "");
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    unescape(&out).into_owned()
}

/// Resolves the XML escapes, numeric references and the commonest HTML named entities;
/// anything else is left as written.
pub(super) fn unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest
            .get(1..)
            .and_then(|tail| tail.find(';'))
            .filter(|end| *end <= 10);
        let decoded = end.and_then(|end| {
            let name = &rest[1..=end];
            decode_entity(name).map(|c| (c, end + 2))
        });
        match decoded {
            Some((c, length)) => {
                out.push(c);
                rest = &rest[length..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

pub(super) fn decode_entity(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "bull" => '•',
        "middot" => '·',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "times" => '×',
        "rarr" => '→',
        "larr" => '←',
        _ => return None,
    })
}

pub(super) fn escape_html(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}
