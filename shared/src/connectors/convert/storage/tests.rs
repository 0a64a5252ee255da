//! Storage format conversion: structure, links, macros, and robustness on odd input.

use url::Url;

use super::{convert, storage_to_markdown, StorageContext};

fn site() -> Url {
    Url::parse("https://example.atlassian.net").unwrap()
}

fn md(storage: &str) -> String {
    storage_to_markdown(storage, &site())
}

fn in_page(storage: &str) -> Result<String, String> {
    let base = site();
    let context = StorageContext {
        base: &base,
        space_key: Some("ENG"),
        page_id: Some("4242"),
    };
    convert(storage, &context, true)
}

#[test]
fn headings_paragraphs_and_inline_formatting() {
    let out = md(
        "<h1>Title</h1><p>Some <strong>bold</strong> and <em>italic</em> \
                  text&nbsp;here &amp; there.</p><h3>Sub</h3><p>x<br/>y</p>",
    );
    assert!(out.starts_with("# Title"), "{out}");
    assert!(
        out.contains("Some **bold** and *italic* text\u{a0}here & there."),
        "{out}"
    );
    assert!(out.contains("### Sub"), "{out}");
}

#[test]
fn lists_and_task_lists() {
    let out = md("<ul><li>one</li><li>two<ul><li>nested</li></ul></li></ul>\
                  <ol><li>first</li><li>second</li></ol>\
                  <ac:task-list><ac:task><ac:task-id>1</ac:task-id>\
                  <ac:task-status>complete</ac:task-status><ac:task-body>done thing</ac:task-body>\
                  </ac:task><ac:task><ac:task-id>2</ac:task-id><ac:task-status>incomplete</ac:task-status>\
                  <ac:task-body>open thing</ac:task-body></ac:task></ac:task-list>");
    assert!(out.contains("- one"), "{out}");
    assert!(out.contains("- nested"), "{out}");
    assert!(out.contains("1. first"), "{out}");
    assert!(out.contains("2. second"), "{out}");
    assert!(out.contains("- ☑ done thing"), "{out}");
    assert!(out.contains("- ☐ open thing"), "{out}");
    assert!(!out.contains("complete"), "{out}");
}

#[test]
fn code_macro_becomes_a_fenced_block_with_its_language() {
    let out = md("<p>Before</p><ac:structured-macro ac:name=\"code\" ac:schema-version=\"1\" \
                  ac:macro-id=\"abc\"><ac:parameter ac:name=\"language\">rust</ac:parameter>\
                  <ac:parameter ac:name=\"title\">Example</ac:parameter>\
                  <ac:plain-text-body><![CDATA[fn main() {\n    if a < b && c > d { println!(\"<hi>\"); }\n}]]>\
                  </ac:plain-text-body></ac:structured-macro>");
    assert!(out.contains("**Example**"), "{out}");
    assert!(
        out.contains("```rust\nfn main() {\n    if a < b && c > d { println!(\"<hi>\"); }\n}\n```"),
        "{out}"
    );
    let plain = md(
        "<ac:structured-macro ac:name=\"noformat\"><ac:plain-text-body>\
                    <![CDATA[raw *text*]]></ac:plain-text-body></ac:structured-macro>",
    );
    assert!(plain.contains("```\nraw *text*\n```"), "{plain}");
}

#[test]
fn panels_become_blockquotes() {
    for (name, label) in [
        ("info", "Info"),
        ("note", "Note"),
        ("warning", "Warning"),
        ("tip", "Tip"),
    ] {
        let out = md(&format!(
            "<ac:structured-macro ac:name=\"{name}\"><ac:parameter ac:name=\"title\">Heads up\
             </ac:parameter><ac:rich-text-body><p>Panel <strong>body</strong></p>\
             </ac:rich-text-body></ac:structured-macro>"
        ));
        assert!(out.contains(&format!("> **{label}: Heads up**")), "{out}");
        assert!(out.contains("> Panel **body**"), "{out}");
    }
}

#[test]
fn tables_get_a_header_row() {
    let out = md("<table><colgroup><col/><col/></colgroup><tbody>\
                  <tr><th>Key</th><th>Value</th></tr>\
                  <tr><td>a</td><td><p>1</p></td></tr>\
                  <tr><th>b</th><td>2</td></tr></tbody></table>");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("| Key") && l.contains("Value")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("| -") || l.starts_with("|-")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("| a") && l.contains('1')),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("| b") && l.contains('2')),
        "{out}"
    );
    // No header cells at all: the first row becomes the header.
    let headless = md(
        "<table><tbody><tr><td>x</td><td>y</td></tr><tr><td>1</td><td>2</td></tr>\
                       </tbody></table>",
    );
    assert!(headless.lines().any(|l| l.starts_with("| x")), "{headless}");
    assert!(headless.lines().any(|l| l.starts_with("| 1")), "{headless}");
}

#[test]
fn links_to_pages_urls_and_attachments() {
    let out = md("<p><ac:link><ri:page ri:space-key=\"DOC\" ri:content-title=\"Install Guide\"/>\
                  <ac:plain-text-link-body><![CDATA[the guide]]></ac:plain-text-link-body></ac:link>, \
                  <ac:link><ri:page ri:space-key=\"DOC\" ri:content-title=\"FAQ\"/></ac:link>, \
                  <a href=\"https://rust-lang.org/\">Rust</a>, \
                  <ac:link><ri:url ri:value=\"https://example.com/x\"/><ac:link-body><em>ext</em></ac:link-body></ac:link>, \
                  <ac:link ac:anchor=\"top\"><ac:plain-text-link-body><![CDATA[to top]]></ac:plain-text-link-body></ac:link>, \
                  <ac:link><ri:user ri:account-id=\"5b10\"/></ac:link></p>");
    assert!(
        out.contains("[the guide](https://example.atlassian.net/wiki/display/DOC/Install%20Guide)"),
        "{out}"
    );
    assert!(
        out.contains("[FAQ](https://example.atlassian.net/wiki/display/DOC/FAQ)"),
        "{out}"
    );
    assert!(out.contains("[Rust](https://rust-lang.org/)"), "{out}");
    assert!(out.contains("[*ext*](https://example.com/x)"), "{out}");
    assert!(out.contains("to top"), "{out}");
    assert!(out.contains("@user"), "{out}");

    // Inside a page: links without a space key use the page's space, attachments the
    // page's id.
    let page = in_page(
        "<p><ac:link><ri:page ri:content-title=\"Sibling\"/></ac:link> \
                        <ac:link><ri:attachment ri:filename=\"spec v2.pdf\"/></ac:link></p>",
    )
    .unwrap();
    assert!(
        page.contains("[Sibling](https://example.atlassian.net/wiki/display/ENG/Sibling)"),
        "{page}"
    );
    assert!(
        page.contains(
            "[spec v2.pdf](https://example.atlassian.net/wiki/download/attachments/4242/spec%20v2.pdf)"
        ),
        "{page}"
    );
}

#[test]
fn images_become_images_or_placeholders() {
    let out = md("<p><ac:image ac:alt=\"Architecture\"><ri:attachment ri:filename=\"arch.png\"/>\
                  </ac:image> <ac:image><ri:url ri:value=\"https://cdn.example.com/a.png\"/></ac:image></p>");
    assert!(out.contains("(image: Architecture)"), "{out}");
    assert!(
        out.contains("![image](https://cdn.example.com/a.png)"),
        "{out}"
    );
    let page = in_page("<ac:image><ri:attachment ri:filename=\"arch.png\"/></ac:image>").unwrap();
    assert!(
        page.contains(
            "![arch.png](https://example.atlassian.net/wiki/download/attachments/4242/arch.png)"
        ),
        "{page}"
    );
}

#[test]
fn unknown_macros_degrade_to_their_body() {
    let out = md("<ac:structured-macro ac:name=\"toc\"/>\
                  <ac:structured-macro ac:name=\"some-vendor-macro\"><ac:parameter ac:name=\"x\">hidden\
                  </ac:parameter><ac:rich-text-body><p>kept text</p></ac:rich-text-body></ac:structured-macro>\
                  <ac:structured-macro ac:name=\"other\"><ac:plain-text-body><![CDATA[plain kept]]>\
                  </ac:plain-text-body></ac:structured-macro>\
                  <ac:structured-macro ac:name=\"status\"><ac:parameter ac:name=\"title\">DONE</ac:parameter>\
                  </ac:structured-macro> <ac:emoticon ac:name=\"tick\"/>\
                  <ac:layout><ac:layout-section><ac:layout-cell><p>in layout</p></ac:layout-cell>\
                  </ac:layout-section></ac:layout>");
    assert!(out.contains("kept text"), "{out}");
    assert!(out.contains("plain kept"), "{out}");
    assert!(!out.contains("hidden"), "{out}");
    assert!(out.contains("`DONE`"), "{out}");
    assert!(out.contains('✅'), "{out}");
    assert!(out.contains("in layout"), "{out}");
}

#[test]
fn malformed_storage_is_an_error_strictly_and_text_leniently() {
    let broken = "<p>intro</p><ac:structured-macro ac:name=\"code\"><ac:plain-text-body>\
                  <![CDATA[never closed";
    assert!(in_page(broken).is_err());
    let out = md(broken);
    assert!(out.contains("intro"), "{out}");
    assert!(out.contains("never closed"), "{out}");

    assert!(in_page("<p>a</div>").is_err());
    assert!(in_page("<p><strong>a</p></strong>").is_err());
    assert!(in_page("<p>unclosed").is_err());
    let out = md("<p><strong>a</p> b</strong> <p>tail");
    assert!(out.contains('a') && out.contains("tail"), "{out}");
}

#[test]
fn never_panics_on_odd_input() {
    let deep = "<div>".repeat(5000) + "deep text" + &"</div>".repeat(5000);
    assert!(md(&deep).contains("deep text"));
    assert!(in_page(&deep).unwrap().contains("deep text"));
    let unclosed_deep = "<ul><li>".repeat(3000) + "x";
    let _ = md(&unclosed_deep);
    for input in [
        "",
        "<",
        "&",
        "&#xZZ;",
        "&unknown;",
        "<![CDATA[",
        "]]>",
        "<a href=\"javascript:alert(1)\">x</a>",
        "<?xml version=\"1.0\"?><p>x</p>",
        "<!-- c --><p>x</p>",
        "<p a='\"'>x</p>",
        "\u{0}",
        "<ac:link><ri:page/></ac:link>",
        "<ac:image/>",
        "<table><tr><td>x</td></tr></table>",
        "<td>orphan</td>",
        "<ac:structured-macro/>",
    ] {
        let _ = md(input);
    }
    assert!(!md("<a href=\"javascript:alert(1)\">x</a>").contains("javascript"));
}

#[test]
fn random_tag_soup_never_panics() {
    const FRAGMENTS: [&str; 24] = [
        "<p>",
        "</p>",
        "text",
        "&nbsp;",
        "&",
        "<![CDATA[x",
        "]]>",
        "<ac:structured-macro ac:name=\"code\">",
        "</ac:structured-macro>",
        "<ac:plain-text-body>",
        "</ac:plain-text-body>",
        "<ac:rich-text-body>",
        "</ac:rich-text-body>",
        "<table>",
        "<tr>",
        "<td>",
        "</td>",
        "</table>",
        "<ac:link>",
        "<ri:page ri:content-title=\"a\"/>",
        "</ac:link>",
        "<br/>",
        "<li>",
        "\u{1F600}",
    ];
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..2_000 {
        let mut input = String::new();
        for _ in 0..(seed % 40) {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            input.push_str(FRAGMENTS[(seed >> 33) as usize % FRAGMENTS.len()]);
        }
        seed = seed.wrapping_add(0x9E37_79B9);
        let _ = md(&input);
        let _ = in_page(&input);
    }
}
