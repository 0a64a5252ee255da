//! The subset of Drive's `q` search syntax the connector sends: clauses joined by `and`,
//! each one of `trashed = true|false`, `'<id>' in parents`, `'<email>|me' in owners`,
//! `mimeType = '<type>'`, `mimeType != '<type>'`. Anything else is refused (400), as Drive
//! refuses a query it cannot parse.

use super::state::FakeFile;

#[derive(Clone, Debug, PartialEq)]
pub enum Clause {
    Trashed(bool),
    InParents(String),
    InOwners(String),
    MimeIs(String),
    MimeIsNot(String),
}

pub fn parse(q: &str) -> Result<Vec<Clause>, String> {
    if q.trim().is_empty() {
        return Ok(Vec::new());
    }
    split_and(q)
        .iter()
        .map(|clause| parse_clause(clause.trim()))
        .collect()
}

/// Splits on ` and ` outside quotes.
fn split_and(q: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && quoted && i + 1 < chars.len() {
            current.push(c);
            current.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if c == '\'' {
            quoted = !quoted;
        }
        if !quoted {
            let rest: String = chars[i..].iter().take(5).collect();
            if rest.eq_ignore_ascii_case(" and ") {
                parts.push(std::mem::take(&mut current));
                i += 5;
                continue;
            }
        }
        current.push(c);
        i += 1;
    }
    parts.push(current);
    parts
}

fn literal(text: &str) -> Option<String> {
    let inner = text.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next()?);
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn parse_clause(clause: &str) -> Result<Clause, String> {
    let invalid = || format!("Invalid Value: unsupported query clause {clause:?}");
    let compact: String = clause.split_whitespace().collect::<Vec<_>>().join(" ");
    match compact.as_str() {
        "trashed = false" | "trashed=false" => return Ok(Clause::Trashed(false)),
        "trashed = true" | "trashed=true" => return Ok(Clause::Trashed(true)),
        _ => {}
    }
    if let Some(value) = compact.strip_suffix(" in parents") {
        return literal(value).map(Clause::InParents).ok_or_else(invalid);
    }
    if let Some(value) = compact.strip_suffix(" in owners") {
        return literal(value).map(Clause::InOwners).ok_or_else(invalid);
    }
    if let Some(value) = compact.strip_prefix("mimeType != ") {
        return literal(value).map(Clause::MimeIsNot).ok_or_else(invalid);
    }
    if let Some(value) = compact.strip_prefix("mimeType = ") {
        return literal(value).map(Clause::MimeIs).ok_or_else(invalid);
    }
    Err(invalid())
}

pub fn matches(clauses: &[Clause], file: &FakeFile, user: &str) -> bool {
    clauses.iter().all(|clause| match clause {
        Clause::Trashed(trashed) => file.trashed == *trashed,
        Clause::InParents(parent) => file.parents.iter().any(|p| p == parent),
        Clause::InOwners(owner) if owner == "me" => file.owner.as_deref() == Some(user),
        Clause::InOwners(owner) => file.owner.as_deref() == Some(owner.as_str()),
        Clause::MimeIs(mime) => file.mime_type == *mime,
        Clause::MimeIsNot(mime) => file.mime_type != *mime,
    })
}
