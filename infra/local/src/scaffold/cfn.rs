//! The parts of `template.yaml` that repeat per source, generated from the list of sources.
//!
//! `template.yaml` marks each such part with a pair of comment lines,
//! `# BEGIN generated: <section>` / `# END generated: <section>`; everything between them is
//! rendered from the fragments in `infra/local/templates/cfn/` (indented to the marker), so
//! adding a source or an environment variable every sync function needs is an edit of one
//! fragment, not of every function. `gen-template --check` fails when the checked-in file
//! differs from what the registry gives (CI runs it).

use super::{ScaffoldError, SourceEntry};

const QUEUES: &str = include_str!("../../templates/cfn/queues.yaml");
const FUNCTION: &str = include_str!("../../templates/cfn/function.yaml");
const QUEUE_URL: &str = include_str!("../../templates/cfn/queue_url.yaml");
const QUEUE_POLICY: &str = include_str!("../../templates/cfn/queue_policy.yaml");
const ALARM: &str = include_str!("../../templates/cfn/alarm.yaml");
const DLQ_METRIC: &str = include_str!("../../templates/cfn/dlq_metric.yaml");

const BEGIN: &str = "# BEGIN generated: ";
const END: &str = "# END generated: ";

/// Every section `template.yaml` must contain at least once.
pub const SECTIONS: [&str; 5] = [
    "sync-queues",
    "sync-functions",
    "sync-queue-urls",
    "sync-queue-policies",
    "sync-alarm",
];

/// `template` with every generated section rendered for `sources`.
pub fn render(template: &str, sources: &[SourceEntry]) -> Result<String, ScaffoldError> {
    let mut out = String::with_capacity(template.len() + 4096);
    let mut seen = Vec::new();
    let mut lines = template.split_inclusive('\n');
    while let Some(line) = lines.next() {
        out.push_str(line);
        let Some(section) = line.trim().strip_prefix(BEGIN) else {
            continue;
        };
        let section = section.trim().to_owned();
        let indent = &line[..line.len() - line.trim_start().len()];
        let body = section_body(&section, sources)?;
        out.push_str(&indented(&body, indent));
        let end = format!("{END}{section}");
        loop {
            match lines.next() {
                Some(line) if line.trim() == end => {
                    out.push_str(line);
                    break;
                }
                Some(line) if line.trim().starts_with(BEGIN) => {
                    return Err(ScaffoldError::Template(format!(
                        "section {section} is not closed before {}",
                        line.trim()
                    )))
                }
                Some(_) => {}
                None => {
                    return Err(ScaffoldError::Template(format!(
                        "section {section} has no `{end}` line"
                    )))
                }
            }
        }
        seen.push(section);
    }
    if let Some(missing) = SECTIONS
        .iter()
        .find(|name| !seen.iter().any(|s| s == *name))
    {
        return Err(ScaffoldError::Template(format!(
            "template.yaml has no `{BEGIN}{missing}` section"
        )));
    }
    Ok(out)
}

fn section_body(section: &str, sources: &[SourceEntry]) -> Result<String, ScaffoldError> {
    let Some(first) = sources.first() else {
        return Err(ScaffoldError::Template("no sources registered".into()));
    };
    Ok(match section {
        "sync-queues" => each(QUEUES, sources, "\n"),
        "sync-functions" => sources
            .iter()
            .map(|source| fragment(FUNCTION, source, sources))
            .collect::<Vec<_>>()
            .join("\n"),
        "sync-queue-urls" => each(QUEUE_URL, sources, ""),
        "sync-queue-policies" => each(QUEUE_POLICY, sources, ""),
        "sync-alarm" => {
            let sum = sources
                .iter()
                .map(|source| source.name.as_str())
                .collect::<Vec<_>>()
                .join(" + ");
            fragment(&ALARM.replace("{{dlq_sum}}", &sum), first, sources)
        }
        other => {
            return Err(ScaffoldError::Template(format!(
                "unknown generated section `{other}`"
            )))
        }
    })
}

/// `fragment` once per source, joined by `separator`.
fn each(fragment_text: &str, sources: &[SourceEntry], separator: &str) -> String {
    sources
        .iter()
        .map(|source| fragment(fragment_text, source, sources))
        .collect::<Vec<_>>()
        .join(separator)
}

/// One fragment for `source`: placeholders replaced, and a line that is only
/// `{{queue_urls}}`, `{{queue_policies}}` or `{{dlq_metrics}}` expanded for every source at
/// that line's indentation.
fn fragment(text: &str, source: &SourceEntry, sources: &[SourceEntry]) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let indent = &line[..line.len() - line.trim_start().len()];
        let nested = match line.trim() {
            "{{queue_urls}}" => Some(QUEUE_URL),
            "{{queue_policies}}" => Some(QUEUE_POLICY),
            "{{dlq_metrics}}" => Some(DLQ_METRIC),
            _ => None,
        };
        match nested {
            Some(nested) => out.push_str(&indented(&each(nested, sources, ""), indent)),
            None => out.push_str(&source.substitute(line)),
        }
    }
    out
}

/// Every non-empty line prefixed with `indent`.
fn indented(text: &str, indent: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            if line.trim().is_empty() {
                line.trim_start_matches([' ', '\t']).to_owned()
            } else {
                format!("{indent}{line}")
            }
        })
        .collect()
}

/// The first line where `a` and `b` differ (1-based), with both versions of it.
pub fn first_difference(a: &str, b: &str) -> Option<(usize, String, String)> {
    let (mut left, mut right) = (a.lines(), b.lines());
    for number in 1.. {
        match (left.next(), right.next()) {
            (None, None) => return None,
            (l, r) if l == r => continue,
            (l, r) => {
                return Some((
                    number,
                    l.unwrap_or("<end of file>").to_owned(),
                    r.unwrap_or("<end of file>").to_owned(),
                ))
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(names: &[(&str, &str)]) -> Vec<SourceEntry> {
        names
            .iter()
            .map(|(name, title)| SourceEntry::new(name, title))
            .collect()
    }

    const TEMPLATE: &str = "Resources:\n  # BEGIN generated: sync-queues\n  Stale: {}\n  # END generated: sync-queues\n  # BEGIN generated: sync-functions\n  # END generated: sync-functions\n  Other:\n    Variables:\n      # BEGIN generated: sync-queue-urls\n      # END generated: sync-queue-urls\n    Policies:\n      # BEGIN generated: sync-queue-policies\n      # END generated: sync-queue-policies\n  # BEGIN generated: sync-alarm\n  # END generated: sync-alarm\n";

    #[test]
    fn sections_are_rendered_at_the_markers_indentation_and_rerendering_is_stable() {
        let list = sources(&[("jira", "Jira Cloud"), ("acme_wiki", "Acme Wiki")]);
        let once = render(TEMPLATE, &list).expect("render");
        assert!(!once.contains("Stale"), "old content is replaced");
        assert!(once.contains("\n  SyncAcmeWikiQueue:\n    Type: AWS::SQS::Queue\n"));
        assert!(once.contains(
            "\n      TRIBUTARY_SYNC_QUEUE_URL_JIRA: !Ref SyncJiraQueue\n      TRIBUTARY_SYNC_QUEUE_URL_ACME_WIKI: !Ref SyncAcmeWikiQueue\n      # END"
        ));
        assert!(once.contains("Binary: sync-acme-wiki\n"));
        assert!(once.contains("Description: Acme Wiki sync — "));
        assert!(once.contains("Expression: jira + acme_wiki\n"));
        // Each function sends to every source's queue (continuations and re-enqueues).
        assert_eq!(
            once.matches("QueueName: !GetAtt SyncAcmeWikiQueue.QueueName")
                .count(),
            3
        );
        assert!(!once.contains("{{"), "no placeholder left");
        assert!(!once.contains(" \n"), "no trailing spaces");
        assert_eq!(render(&once, &list).expect("again"), once);
    }

    #[test]
    fn unclosed_unknown_and_missing_sections_are_refused() {
        let list = sources(&[("jira", "Jira Cloud")]);
        let unclosed = TEMPLATE.replace("  # END generated: sync-queues\n", "");
        assert!(render(&unclosed, &list).is_err());
        let unknown = TEMPLATE.replace("sync-alarm", "sync-alarms");
        assert!(render(&unknown, &list).is_err());
        let missing = TEMPLATE.replace(
            "  # BEGIN generated: sync-alarm\n  # END generated: sync-alarm\n",
            "",
        );
        assert!(render(&missing, &list).is_err());
    }

    #[test]
    fn the_checked_in_template_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
        let checked_in = std::fs::read_to_string(path).expect("template.yaml");
        let generated = render(&checked_in, &super::super::registered_sources()).expect("render");
        if let Some((line, ours, theirs)) = first_difference(&checked_in, &generated) {
            panic!("template.yaml line {line} is `{ours}`, generated `{theirs}`: run `cargo run -p tributary-local -- gen-template`");
        }
    }
}
