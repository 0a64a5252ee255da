//! A Jira issue (its fields, comments and text attachments) as a document.

use chrono::{DateTime, FixedOffset};
use serde_json::{json, Map, Value};

use super::super::convert::{adf_to_markdown, fence_for};
use super::super::document::Document;
use super::super::ConnectorError;
use super::checkpoint::{parse_jira_time, utc_string};
use super::{JiraConnector, SOURCE};

/// An issue's fields as far as a document needs them.
pub(super) struct Issue<'a> {
    pub(super) id: String,
    pub(super) key: String,
    pub(super) summary: String,
    pub(super) updated: DateTime<FixedOffset>,
    pub(super) created: Option<DateTime<FixedOffset>>,
    pub(super) project_key: Option<String>,
    pub(super) project_name: Option<String>,
    pub(super) status: Option<String>,
    pub(super) issue_type: Option<String>,
    pub(super) assignee: Option<String>,
    pub(super) reporter: Option<String>,
    pub(super) labels: Vec<String>,
    pub(super) description: &'a Value,
    pub(super) fields: &'a Map<String, Value>,
}

/// A text attachment read for the document.
pub(super) struct AttachmentText {
    pub(super) filename: String,
    pub(super) language: String,
    pub(super) text: String,
}

pub(super) fn string_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |value, key| value.get(key))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

pub(super) fn id_of(value: &Value) -> Option<String> {
    match value.get("id")? {
        Value::String(id) => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

pub(super) fn labels_of(fields: Option<&Value>) -> Vec<String> {
    fields
        .and_then(|fields| fields.get("labels"))
        .and_then(Value::as_array)
        .map(|labels| {
            labels
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn parse_issue(issue: &Value) -> Result<Issue<'_>, String> {
    let id = id_of(issue).ok_or("the issue has no id")?;
    if !is_numeric_id(&id) {
        return Err("the issue id is not numeric".into());
    }
    let key = issue
        .get("key")
        .and_then(Value::as_str)
        .filter(|key| is_issue_key(key))
        .ok_or("the issue has no valid key")?
        .to_owned();
    let fields = issue
        .get("fields")
        .and_then(Value::as_object)
        .ok_or("the issue has no fields")?;
    let summary = fields
        .get("summary")
        .and_then(Value::as_str)
        .ok_or("the summary is not a string")?;
    let summary = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    let updated = fields
        .get("updated")
        .and_then(Value::as_str)
        .and_then(parse_jira_time)
        .ok_or("the updated field is not a timestamp")?;
    let description = fields.get("description").unwrap_or(&Value::Null);
    if !matches!(
        description,
        Value::Null | Value::Object(_) | Value::String(_)
    ) {
        return Err("the description is not a document".into());
    }
    let whole = issue.get("fields").unwrap_or(&Value::Null);
    Ok(Issue {
        id,
        key,
        summary,
        updated,
        created: fields
            .get("created")
            .and_then(Value::as_str)
            .and_then(parse_jira_time),
        project_key: string_at(whole, &["project", "key"]).map(str::to_owned),
        project_name: string_at(whole, &["project", "name"]).map(str::to_owned),
        status: string_at(whole, &["status", "name"]).map(str::to_owned),
        issue_type: string_at(whole, &["issuetype", "name"]).map(str::to_owned),
        assignee: string_at(whole, &["assignee", "displayName"]).map(str::to_owned),
        reporter: string_at(whole, &["reporter", "displayName"]).map(str::to_owned),
        labels: labels_of(Some(whole)),
        description,
        fields,
    })
}

/// `KEY-123`.
pub(super) fn is_issue_key(key: &str) -> bool {
    match key.rsplit_once('-') {
        Some((project, number)) => {
            let mut chars = project.chars();
            matches!(chars.next(), Some('A'..='Z'))
                && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                && !number.is_empty()
                && number.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

pub(super) fn is_numeric_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 20 && id.chars().all(|c| c.is_ascii_digit())
}

impl JiraConnector {
    /// The document of one issue; `Ok(Err(_))` when this issue cannot be converted.
    pub(super) async fn convert(
        &self,
        raw: &Value,
    ) -> Result<Result<Document, String>, ConnectorError> {
        let issue = match parse_issue(raw) {
            Ok(issue) => issue,
            Err(error) => return Ok(Err(error)),
        };
        let comments = if self.config.include_comments {
            match self.comments(&issue).await? {
                Ok(comments) => comments,
                Err(error) => return Ok(Err(error)),
            }
        } else {
            Vec::new()
        };
        let attachments = if self.config.attachments {
            self.attachments(&issue).await?
        } else {
            Vec::new()
        };
        Ok(Ok(self.document(&issue, &comments, &attachments)))
    }

    pub(super) fn document(
        &self,
        issue: &Issue<'_>,
        comments: &[Value],
        attachments: &[AttachmentText],
    ) -> Document {
        let title = format!("{}: {}", issue.key, issue.summary);
        let updated = utc_string(&issue.updated);
        let created = issue.created.as_ref().map(utc_string);

        let mut markdown = format!("# {title}\n\n");
        markdown.push_str(&facts(issue, created.as_deref(), &updated));
        let description = adf_to_markdown(issue.description);
        if !description.is_empty() {
            markdown.push('\n');
            markdown.push_str(&description);
            markdown.push('\n');
        }
        markdown.push_str(&comments_section(comments));
        markdown.push_str(&attachments_section(attachments));

        Document {
            id: Document::stable_id(&self.scope, &issue.id),
            source: SOURCE.into(),
            source_id: issue.id.clone(),
            title: Some(title),
            url: Some(format!("{}/browse/{}", self.base, issue.key)),
            markdown,
            metadata: metadata(issue, created, &updated),
            updated_at: updated,
            acl: Vec::new(),
        }
    }
}

/// The issue's facts as a bullet list (newline-terminated).
fn facts(issue: &Issue<'_>, created: Option<&str>, updated: &str) -> String {
    let project = match (&issue.project_key, &issue.project_name) {
        (Some(key), Some(name)) if key != name => format!("{key} ({name})"),
        (Some(key), _) => key.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => "unknown".into(),
    };
    let mut facts = vec![
        format!("- **Project:** {project}"),
        format!(
            "- **Type:** {}",
            issue.issue_type.as_deref().unwrap_or("unknown")
        ),
        format!(
            "- **Status:** {}",
            issue.status.as_deref().unwrap_or("unknown")
        ),
        format!(
            "- **Assignee:** {}",
            issue.assignee.as_deref().unwrap_or("Unassigned")
        ),
        format!(
            "- **Reporter:** {}",
            issue.reporter.as_deref().unwrap_or("unknown")
        ),
    ];
    if !issue.labels.is_empty() {
        facts.push(format!("- **Labels:** {}", issue.labels.join(", ")));
    }
    if let Some(created) = created {
        facts.push(format!("- **Created:** {created}"));
    }
    facts.push(format!("- **Updated:** {updated}"));
    let mut markdown = facts.join("\n");
    markdown.push('\n');
    markdown
}

/// `## Comments` with one `###` per comment (author · date), or nothing.
fn comments_section(comments: &[Value]) -> String {
    if comments.is_empty() {
        return String::new();
    }
    let mut markdown = String::from("\n## Comments\n");
    for comment in comments {
        let author = string_at(comment, &["author", "displayName"]).unwrap_or("Unknown");
        let when = comment
            .get("created")
            .and_then(Value::as_str)
            .and_then(parse_jira_time)
            .map(|time| utc_string(&time))
            .unwrap_or_else(|| "unknown date".into());
        markdown.push_str(&format!("\n### {author} · {when}\n"));
        let body = adf_to_markdown(comment.get("body").unwrap_or(&Value::Null));
        if !body.is_empty() {
            markdown.push('\n');
            markdown.push_str(&body);
            markdown.push('\n');
        }
    }
    markdown
}

/// `## Attachments` with each text attachment as a fenced block, or nothing.
fn attachments_section(attachments: &[AttachmentText]) -> String {
    if attachments.is_empty() {
        return String::new();
    }
    let mut markdown = String::from("\n## Attachments\n");
    for attachment in attachments {
        let fence = fence_for(&attachment.text, '`');
        let text = attachment.text.trim_end_matches(['\n', '\r']);
        markdown.push_str(&format!(
            "\n### {}\n\n{fence}{}\n{text}\n{fence}\n",
            one_line(&attachment.filename),
            attachment.language
        ));
    }
    markdown
}

fn metadata(issue: &Issue<'_>, created: Option<String>, updated: &str) -> Map<String, Value> {
    let mut metadata = Map::new();
    metadata.insert("key".into(), json!(issue.key));
    metadata.insert("project".into(), json!(issue.project_key));
    metadata.insert("status".into(), json!(issue.status));
    metadata.insert("issue_type".into(), json!(issue.issue_type));
    metadata.insert("labels".into(), json!(issue.labels));
    metadata.insert("created".into(), json!(created));
    metadata.insert("updated".into(), json!(updated));
    metadata.insert("assignee".into(), json!(issue.assignee));
    metadata.insert("reporter".into(), json!(issue.reporter));
    metadata
}

/// The fence language of an attachment we read, or `None` for types we leave out.
pub(super) fn text_language(mime: &str) -> Option<String> {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" {
        return Some("json".into());
    }
    let subtype = essence.strip_prefix("text/")?;
    Some(match subtype {
        "plain" => "text".into(),
        other if other.chars().all(|c| c.is_ascii_alphanumeric()) => other.into(),
        _ => String::new(),
    })
}

pub(super) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
