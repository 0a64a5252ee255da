//! `tributary-local new-source <name>`: scaffolds a source (its connector folder, registry
//! line, `sync-<name>` function crate, template.yaml resources and a fake-server test that
//! already passes), and `gen-template`, which renders template.yaml's per-source sections.
//!
//! The templates are files under `infra/local/templates/` compiled in with `include_str!`;
//! placeholders are `{{name}}` (`acme_wiki`), `{{Name}}` (`AcmeWiki`), `{{NAME}}`
//! (`ACME_WIKI`), `{{kebab}}` (`acme-wiki`), `{{title}}`, and in the connector's `mod.rs`
//! `{{credential_kinds}}` and `{{provider}}` (from `--provider`).

pub mod cfn;

use std::path::{Path, PathBuf};

/// The one line per source: `Variant => module,` in the `sources!` invocation.
pub const REGISTRY_FILE: &str = "shared/src/connectors/mod.rs";
const REGISTRY_OPEN: &str = "sources! {";
const REGISTRY_MARKER: &str = "// new-source:";
pub const TEMPLATE_FILE: &str = "template.yaml";

/// The OAuth provider presets a new source may name with `--provider`.
pub const PROVIDERS: [&str; 7] = [
    "google",
    "microsoft",
    "slack",
    "notion",
    "dropbox",
    "discord",
    "oauth2",
];

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("invalid source name `{name}`: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("invalid title `{0}`: letters, digits, spaces and - . , ( ) & ' / only")]
    InvalidTitle(String),
    #[error("unknown provider `{0}` (one of: {list})", list = PROVIDERS.join(", "))]
    UnknownProvider(String),
    #[error("{0} already exists; the generator never overwrites a file")]
    Exists(PathBuf),
    #[error("{0}")]
    Template(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("rustfmt failed on the generated files ({0}); run `cargo fmt --all`")]
    Format(String),
}

/// A source as the templates see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceEntry {
    /// snake_case: module, `SourceKind` serde name, env var suffix, metric id.
    pub name: String,
    pub title: String,
}

impl SourceEntry {
    pub fn new(name: &str, title: &str) -> Self {
        Self {
            name: name.to_owned(),
            title: title.to_owned(),
        }
    }

    /// `acme_wiki` → `AcmeWiki`.
    pub fn camel(&self) -> String {
        self.name
            .split('_')
            .map(|word| {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect()
    }

    pub fn kebab(&self) -> String {
        self.name.replace('_', "-")
    }

    pub fn substitute(&self, text: &str) -> String {
        text.replace("{{name}}", &self.name)
            .replace("{{Name}}", &self.camel())
            .replace("{{NAME}}", &self.name.to_ascii_uppercase())
            .replace("{{kebab}}", &self.kebab())
            .replace("{{title}}", &self.title)
    }
}

/// The sources the registry holds, in its order (template.yaml follows it).
pub fn registered_sources() -> Vec<SourceEntry> {
    tributary::connectors::registry::all()
        .iter()
        .map(|source| SourceEntry::new(source.name, source.title))
        .collect()
}

const RUST_KEYWORDS: [&str; 52] = [
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen", "union",
];

/// `acme_wiki` or `acme-wiki` → the source's snake_case name. Words are lowercase ASCII
/// letters and digits starting with a letter (so `AcmeWiki` maps back to `acme_wiki` under
/// serde's snake_case), at most 30 characters, not a Rust keyword, not a source already.
pub fn parse_name(raw: &str, existing: &[SourceEntry]) -> Result<String, ScaffoldError> {
    let invalid = |reason: &str| ScaffoldError::InvalidName {
        name: raw.to_owned(),
        reason: reason.to_owned(),
    };
    if raw.is_empty() || raw.len() > 30 {
        return Err(invalid("1 to 30 characters"));
    }
    if raw.contains('_') && raw.contains('-') {
        return Err(invalid("use either snake_case or kebab-case, not both"));
    }
    let name = raw.replace('-', "_");
    let words_ok = name.split('_').all(|word| {
        word.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    if !words_ok {
        return Err(invalid(
            "lowercase words of a-z and 0-9, each starting with a letter, joined by _ or -",
        ));
    }
    if RUST_KEYWORDS.contains(&name.as_str()) {
        return Err(invalid("a Rust keyword cannot name a module"));
    }
    if existing.iter().any(|source| source.name == name) {
        return Err(invalid("a source with this name exists"));
    }
    Ok(name)
}

/// `acme_wiki` → `Acme Wiki`.
pub fn default_title(name: &str) -> String {
    SourceEntry::new(name, "")
        .name
        .split('_')
        .map(|word| SourceEntry::new(word, "").camel())
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_title(title: &str) -> Result<(), ScaffoldError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || " -.,()&'/".contains(c);
    let starts_well = title
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if title.len() > 60 || !starts_well || !title.chars().all(allowed) || title.ends_with(' ') {
        return Err(ScaffoldError::InvalidTitle(title.to_owned()));
    }
    Ok(())
}

/// What `new-source` was asked for.
#[derive(Clone, Debug)]
pub struct NewSource {
    pub name: String,
    pub title: Option<String>,
    pub provider: Option<String>,
}

/// What `new-source` did, relative to the repository root.
#[derive(Debug, Default)]
pub struct Scaffolded {
    pub created: Vec<PathBuf>,
    pub edited: Vec<PathBuf>,
}

struct Template {
    path: &'static str,
    text: &'static str,
}

macro_rules! templates {
    ($($path:literal => $file:literal),* $(,)?) => {
        [$(Template { path: $path, text: include_str!(concat!("../../templates/source/", $file)) }),*]
    };
}

/// Every file a new source gets (paths have placeholders too).
const FILES: [Template; 9] = templates![
    "shared/src/connectors/{{name}}/mod.rs" => "connector/mod.rs.tmpl",
    "shared/src/connectors/{{name}}/config.rs" => "connector/config.rs.tmpl",
    "shared/src/connectors/{{name}}/client.rs" => "connector/client.rs.tmpl",
    "shared/src/connectors/{{name}}/checkpoint.rs" => "connector/checkpoint.rs.tmpl",
    "shared/src/connectors/{{name}}/convert.rs" => "connector/convert.rs.tmpl",
    "functions/sync-{{kebab}}/Cargo.toml" => "function/Cargo.toml.tmpl",
    "functions/sync-{{kebab}}/src/main.rs" => "function/main.rs.tmpl",
    "tests/support/fake_{{name}}.rs" => "tests/fake.rs.tmpl",
    "tests/e2e/{{name}}_connector.rs" => "tests/connector.rs.tmpl",
];
const REGISTRY_LINE: &str = include_str!("../../templates/source/registry-line.tmpl");

/// Rust files rustfmt is run on (a module file formats its submodules too).
const FORMATTED: [&str; 4] = [
    "shared/src/connectors/{{name}}/mod.rs",
    "functions/sync-{{kebab}}/src/main.rs",
    "tests/support/fake_{{name}}.rs",
    "tests/e2e/{{name}}_connector.rs",
];

/// Scaffolds the source in the repository at `root`: checks everything first, then writes
/// (new files are created exclusively; nothing existing is overwritten).
pub fn new_source(root: &Path, request: &NewSource) -> Result<Scaffolded, ScaffoldError> {
    let existing = registered_sources();
    let name = parse_name(&request.name, &existing)?;
    let title = request
        .title
        .clone()
        .unwrap_or_else(|| default_title(&name));
    check_title(&title)?;
    if let Some(provider) = &request.provider {
        if !PROVIDERS.contains(&provider.as_str()) {
            return Err(ScaffoldError::UnknownProvider(provider.clone()));
        }
    }
    let source = SourceEntry::new(&name, &title);
    let (kinds, provider) = match &request.provider {
        Some(provider) => (
            "&[CredentialKind::Bearer, CredentialKind::Connection]",
            format!("ConnectionProvider::Only(\"{provider}\")"),
        ),
        None => (
            "&[CredentialKind::Bearer]",
            "ConnectionProvider::Any".to_owned(),
        ),
    };
    let render = |text: &str| {
        source
            .substitute(text)
            .replace("{{credential_kinds}}", kinds)
            .replace("{{provider}}", &provider)
    };

    let mut created = Vec::new();
    for template in &FILES {
        let path = PathBuf::from(render(template.path));
        if root.join(&path).exists() {
            return Err(ScaffoldError::Exists(path));
        }
        created.push((path, render(template.text)));
    }
    let folder = root.join(format!("shared/src/connectors/{name}.rs"));
    if folder.exists() {
        return Err(ScaffoldError::Exists(folder));
    }

    let mut sources = existing;
    sources.push(source.clone());
    let edits = vec![
        (
            PathBuf::from(REGISTRY_FILE),
            edit(root, REGISTRY_FILE, |text| {
                insert_registry_line(text, &render(REGISTRY_LINE))
            })?,
        ),
        (
            PathBuf::from("tests/e2e/main.rs"),
            edit(root, "tests/e2e/main.rs", |text| {
                insert_sorted_mod(text, &format!("mod {name}_connector;"))
            })?,
        ),
        (
            PathBuf::from("tests/support/lib.rs"),
            edit(root, "tests/support/lib.rs", |text| {
                insert_sorted_mod(text, &format!("pub mod fake_{name};"))
            })?,
        ),
        (
            PathBuf::from(TEMPLATE_FILE),
            edit(root, TEMPLATE_FILE, |text| cfn::render(text, &sources))?,
        ),
    ];

    let mut done = Scaffolded::default();
    for (path, text) in created {
        write_new(&root.join(&path), &text)?;
        done.created.push(path);
    }
    for (path, text) in edits {
        let full = root.join(&path);
        std::fs::write(&full, text).map_err(|source| ScaffoldError::Io { path: full, source })?;
        done.edited.push(path);
    }
    rustfmt(root, &FORMATTED.map(render))?;
    Ok(done)
}

fn edit(
    root: &Path,
    path: &str,
    change: impl FnOnce(&str) -> Result<String, ScaffoldError>,
) -> Result<String, ScaffoldError> {
    let full = root.join(path);
    let text = std::fs::read_to_string(&full).map_err(|source| ScaffoldError::Io {
        path: full.clone(),
        source,
    })?;
    change(&text)
}

fn write_new(path: &Path, text: &str) -> Result<(), ScaffoldError> {
    use std::io::Write as _;
    let io = |source| ScaffoldError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)
}

/// `line` appended to the `sources! { .. }` list, at its entries' indentation.
fn insert_registry_line(text: &str, line: &str) -> Result<String, ScaffoldError> {
    let missing = || {
        ScaffoldError::Template(format!(
            "no `{REGISTRY_OPEN} .. }}` list in {REGISTRY_FILE}"
        ))
    };
    let lines: Vec<&str> = text.lines().collect();
    let open = lines
        .iter()
        .position(|l| l.trim() == REGISTRY_OPEN)
        .ok_or_else(missing)?;
    let close = (open + 1..lines.len())
        .find(|&i| lines[i].trim() == "}")
        .ok_or_else(missing)?;
    // Above the registry's `// new-source: ..` marker when it has one, else last.
    let at = (open + 1..close)
        .find(|&i| lines[i].trim().starts_with(REGISTRY_MARKER))
        .unwrap_or(close);
    let model = lines[at.min(close - 1)];
    let indent = match close - 1 > open {
        true => &model[..model.len() - model.trim_start().len()],
        false => "    ",
    };
    let entry = format!("{indent}{}", line.trim());
    let mut out: Vec<&str> = lines[..at].to_vec();
    out.push(&entry);
    out.extend_from_slice(&lines[at..]);
    Ok(out.join("\n") + "\n")
}

/// `declaration` (`mod x;` / `pub mod x;`) inserted in order among the file's run of such
/// lines, where rustfmt's module ordering would put it.
fn insert_sorted_mod(text: &str, declaration: &str) -> Result<String, ScaffoldError> {
    let module = |line: &str| {
        let line = line.trim();
        let rest = line.strip_prefix("pub ").unwrap_or(line);
        rest.strip_prefix("mod ")
            .and_then(|rest| rest.strip_suffix(';'))
            .map(str::to_owned)
    };
    let new = module(declaration).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let declared: Vec<usize> = (0..lines.len())
        .filter(|&i| module(lines[i]).is_some())
        .collect();
    let (Some(&first), Some(&last)) = (declared.first(), declared.last()) else {
        return Err(ScaffoldError::Template(format!(
            "no module declarations to add `{declaration}` to"
        )));
    };
    let at = (first..=last)
        .find(|&i| module(lines[i]).is_some_and(|existing| existing > new))
        .unwrap_or(last + 1);
    let mut out: Vec<&str> = lines[..at].to_vec();
    out.push(declaration);
    out.extend_from_slice(&lines[at..]);
    Ok(out.join("\n") + "\n")
}

fn rustfmt(root: &Path, files: &[String]) -> Result<(), ScaffoldError> {
    let status = std::process::Command::new("rustfmt")
        .args(["--edition", "2021"])
        .args(files)
        .current_dir(root)
        .status()
        .map_err(|error| ScaffoldError::Format(error.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(ScaffoldError::Format(status.to_string()))
    }
}

/// `explicit`, or the nearest directory up from here holding template.yaml and the
/// connectors (so the commands work from anywhere in the repository).
pub fn repository_root(explicit: Option<PathBuf>) -> Result<PathBuf, ScaffoldError> {
    let is_root =
        |dir: &Path| dir.join(TEMPLATE_FILE).is_file() && dir.join(REGISTRY_FILE).is_file();
    if let Some(root) = explicit {
        return match is_root(&root) {
            true => Ok(root),
            false => Err(ScaffoldError::Template(format!(
                "{} has no {TEMPLATE_FILE} and {REGISTRY_FILE}",
                root.display()
            ))),
        };
    }
    let here = std::env::current_dir().map_err(|source| ScaffoldError::Io {
        path: PathBuf::from("."),
        source,
    })?;
    here.ancestors()
        .find(|dir| is_root(dir))
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            ScaffoldError::Template(format!(
                "no directory up from {} has {TEMPLATE_FILE} and {REGISTRY_FILE}",
                here.display()
            ))
        })
}

/// What to do after `new-source` (printed).
pub fn next_steps(done: &Scaffolded) -> String {
    let folder = done
        .created
        .first()
        .and_then(|path| path.parent())
        .map(|path| path.display().to_string())
        .unwrap_or_default();
    let test = done
        .created
        .iter()
        .find(|path| path.starts_with("tests/e2e"))
        .and_then(|path| path.file_stem())
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(
        "\nNext: fill in {folder}/client.rs (the provider's calls) and convert.rs (its format), \
         and the fake in tests/support/ to match.\n\
         Run its tests: cargo test -p tributary-e2e --test e2e -- {test}::\n\
         After changing the registry, keep template.yaml in step: cargo run -p tributary-local -- gen-template"
    )
}

/// `gen-template`: renders template.yaml's generated sections from the registry; with
/// `check`, fails instead of writing when the file differs.
pub fn gen_template(root: &Path, check: bool) -> Result<bool, ScaffoldError> {
    let path = root.join(TEMPLATE_FILE);
    let current = std::fs::read_to_string(&path).map_err(|source| ScaffoldError::Io {
        path: path.clone(),
        source,
    })?;
    let generated = cfn::render(&current, &registered_sources())?;
    if generated == current {
        return Ok(true);
    }
    if check {
        if let Some((line, ours, theirs)) = cfn::first_difference(&current, &generated) {
            return Err(ScaffoldError::Template(format!(
                "template.yaml is not the generated one: line {line} is `{ours}`, generated `{theirs}`; run `cargo run -p tributary-local -- gen-template`"
            )));
        }
    }
    std::fs::write(&path, generated).map_err(|source| ScaffoldError::Io { path, source })?;
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn existing() -> Vec<SourceEntry> {
        vec![SourceEntry::new("jira", "Jira Cloud")]
    }

    #[test]
    fn names_are_lowercase_words_and_not_keywords_or_existing_sources() {
        assert_eq!(parse_name("acme_wiki", &existing()).unwrap(), "acme_wiki");
        assert_eq!(parse_name("acme-wiki", &existing()).unwrap(), "acme_wiki");
        assert_eq!(parse_name("moodle2", &existing()).unwrap(), "moodle2");
        for bad in [
            "",
            "Acme",
            "acme wiki",
            "acme__wiki",
            "_acme",
            "acme_",
            "acme_2",
            "2acme",
            "acme-wi_ki",
            "type",
            "crate",
            "async",
            "jira",
            "émile",
            "a_very_long_source_name_beyond_30",
        ] {
            assert!(parse_name(bad, &existing()).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn names_map_to_every_form_the_templates_use() {
        let source = SourceEntry::new("acme_wiki", "Acme Wiki");
        assert_eq!(
            source.substitute("{{name}} {{Name}} {{NAME}} {{kebab}} {{title}}"),
            "acme_wiki AcmeWiki ACME_WIKI acme-wiki Acme Wiki"
        );
        assert_eq!(default_title("acme_wiki"), "Acme Wiki");
        assert!(check_title("Acme Wiki (EU)").is_ok());
        for bad in [
            "",
            " Acme",
            "Acme: Wiki",
            "Acme \"Wiki\"",
            "Acme {{name}}",
            "Acme\\",
        ] {
            assert!(check_title(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn module_lines_go_where_rustfmt_keeps_them() {
        let text = "//! doc\n\npub mod app;\npub mod fake_jira;\npub mod site;\n";
        assert_eq!(
            insert_sorted_mod(text, "pub mod fake_acme;").unwrap(),
            "//! doc\n\npub mod app;\npub mod fake_acme;\npub mod fake_jira;\npub mod site;\n"
        );
        assert_eq!(
            insert_sorted_mod("mod a;\nmod b;\n", "mod zz;").unwrap(),
            "mod a;\nmod b;\nmod zz;\n"
        );
        assert!(insert_sorted_mod("fn main() {}\n", "mod a;").is_err());
    }

    #[test]
    fn the_registry_line_is_appended_to_the_sources_list() {
        let text = "use x;\n\nsources! {\n    Jira => jira,\n}\n\nfn f() {}\n";
        assert_eq!(
            insert_registry_line(text, "AcmeWiki => acme_wiki,\n").unwrap(),
            "use x;\n\nsources! {\n    Jira => jira,\n    AcmeWiki => acme_wiki,\n}\n\nfn f() {}\n"
        );
        let marked = "sources! {\n    Jira => jira,\n    // new-source: registry line\n}\n";
        assert_eq!(
            insert_registry_line(marked, "AcmeWiki => acme_wiki,").unwrap(),
            "sources! {\n    Jira => jira,\n    AcmeWiki => acme_wiki,\n    // new-source: registry line\n}\n"
        );
        assert!(insert_registry_line("fn f() {}\n", "A => a,").is_err());
    }

    #[test]
    fn nothing_is_written_when_a_file_exists() {
        let root = std::env::temp_dir().join(format!("scaffold-exists-{}", std::process::id()));
        let taken = root.join("tests/e2e/acme_wiki_connector.rs");
        std::fs::create_dir_all(taken.parent().unwrap()).unwrap();
        std::fs::write(&taken, "mine").unwrap();
        let request = NewSource {
            name: "acme_wiki".into(),
            title: None,
            provider: None,
        };
        assert!(matches!(
            new_source(&root, &request),
            Err(ScaffoldError::Exists(path)) if path.ends_with("acme_wiki_connector.rs")
        ));
        assert_eq!(std::fs::read_to_string(&taken).unwrap(), "mine");
        assert!(!root.join("shared").exists(), "nothing else was written");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
