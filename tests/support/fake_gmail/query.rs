//! The part of Gmail's search syntax the fake understands, evaluated per message: words
//! (subject, body, sender), `from:`, `to:`, `subject:`, `label:`, `in:` (spam, trash,
//! inbox, anywhere), `is:` (important, starred, unread), `has:attachment`,
//! `rfc822msgid:`, `-` negation, implicit AND, `OR`, parentheses and quoted phrases.
//! Anything else is a syntax error (400 like Gmail's "Invalid query").

/// What the search sees of one message.
pub struct View<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub labels: Vec<&'a str>,
    pub message_id: &'a str,
    pub text: &'a str,
    pub has_attachment: bool,
}

#[derive(Debug, Clone)]
pub enum Query {
    All(Vec<Query>),
    Any(Vec<Query>),
    Not(Box<Query>),
    Term(Option<String>, String),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Or,
    Minus,
    Word(String),
}

fn tokens(input: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            '-' => {
                chars.next();
                out.push(Token::Minus);
            }
            _ => {
                let mut word = String::new();
                let mut quoted = false;
                while let Some(&c) = chars.peek() {
                    if c == '"' {
                        quoted = !quoted;
                        chars.next();
                        continue;
                    }
                    if !quoted && (c.is_whitespace() || c == '(' || c == ')') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                if quoted {
                    return Err("unbalanced quote".into());
                }
                out.push(if word == "OR" {
                    Token::Or
                } else {
                    Token::Word(word)
                });
            }
        }
    }
    Ok(out)
}

pub fn parse(input: &str) -> Result<Query, String> {
    let tokens = tokens(input)?;
    let mut at = 0;
    let query = parse_or(&tokens, &mut at)?;
    if at != tokens.len() {
        return Err("unexpected )".into());
    }
    Ok(query)
}

fn parse_or(tokens: &[Token], at: &mut usize) -> Result<Query, String> {
    let mut any = vec![parse_and(tokens, at)?];
    while tokens.get(*at) == Some(&Token::Or) {
        *at += 1;
        any.push(parse_and(tokens, at)?);
    }
    Ok(if any.len() == 1 {
        any.remove(0)
    } else {
        Query::Any(any)
    })
}

fn parse_and(tokens: &[Token], at: &mut usize) -> Result<Query, String> {
    let mut all = Vec::new();
    while let Some(token) = tokens.get(*at) {
        if matches!(token, Token::Close | Token::Or) {
            break;
        }
        all.push(parse_unary(tokens, at)?);
    }
    if all.is_empty() {
        return Err("empty expression".into());
    }
    Ok(Query::All(all))
}

fn parse_unary(tokens: &[Token], at: &mut usize) -> Result<Query, String> {
    match tokens.get(*at) {
        Some(Token::Minus) => {
            *at += 1;
            Ok(Query::Not(Box::new(parse_unary(tokens, at)?)))
        }
        Some(Token::Open) => {
            *at += 1;
            let inner = parse_or(tokens, at)?;
            if tokens.get(*at) != Some(&Token::Close) {
                return Err("missing )".into());
            }
            *at += 1;
            Ok(inner)
        }
        Some(Token::Word(word)) => {
            *at += 1;
            term(word)
        }
        _ => Err("unexpected token".into()),
    }
}

fn term(word: &str) -> Result<Query, String> {
    match word.split_once(':') {
        Some((field, value)) => {
            let field = field.to_ascii_lowercase();
            let known = [
                "from",
                "to",
                "subject",
                "label",
                "in",
                "is",
                "has",
                "rfc822msgid",
            ];
            if !known.contains(&field.as_str()) || value.is_empty() {
                return Err(format!("unsupported operator {field}:"));
            }
            Ok(Query::Term(Some(field), value.to_owned()))
        }
        None => Ok(Query::Term(None, word.to_owned())),
    }
}

fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

impl Query {
    pub fn matches(&self, view: &View<'_>) -> bool {
        match self {
            Query::All(all) => all.iter().all(|q| q.matches(view)),
            Query::Any(any) => any.iter().any(|q| q.matches(view)),
            Query::Not(inner) => !inner.matches(view),
            Query::Term(None, word) => {
                contains(view.subject, word)
                    || contains(view.text, word)
                    || contains(view.from, word)
            }
            Query::Term(Some(field), value) => {
                let has_label =
                    |label: &str| view.labels.iter().any(|l| l.eq_ignore_ascii_case(label));
                match field.as_str() {
                    "from" => contains(view.from, value),
                    "to" => contains(view.to, value),
                    "subject" => contains(view.subject, value),
                    "label" => has_label(value),
                    "in" => match value.to_ascii_lowercase().as_str() {
                        "anywhere" => true,
                        other => has_label(other),
                    },
                    "is" => has_label(value),
                    "has" => value.eq_ignore_ascii_case("attachment") && view.has_attachment,
                    "rfc822msgid" => {
                        let bare = |id: &str| {
                            id.trim()
                                .trim_start_matches('<')
                                .trim_end_matches('>')
                                .to_owned()
                        };
                        bare(view.message_id) == bare(value)
                    }
                    _ => false,
                }
            }
        }
    }
}
