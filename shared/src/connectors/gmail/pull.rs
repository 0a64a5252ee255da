//! One step of a Gmail pull (see the module documentation of `gmail` for the passes), and
//! a thread fetched and turned into its document.

use std::collections::{BTreeSet, HashSet};

use futures::{StreamExt as _, TryStreamExt as _};
use serde_json::Value;

use super::checkpoint::{Checkpoint, Mailbox, Phase};
use super::client::{History, MailboxClient, Message, Thread, GET_CONCURRENCY};
use super::convert::{self, BodySource, RenderedMessage};
use super::{source_id, GmailConnector, SOURCE};
use crate::connectors::document::Document;
use crate::connectors::{Batch, ConnectorError, DocumentFailure, SkippedFile};

/// What one step produced.
#[derive(Default)]
struct Step {
    documents: Vec<Document>,
    failures: Vec<DocumentFailure>,
    skipped: Vec<SkippedFile>,
    deleted: Vec<String>,
}

/// Whether the fetched thread stays a document.
enum Fetched {
    Document(Box<Document>, Vec<SkippedFile>),
    /// Gone, or out of scope now.
    Gone,
    /// Could not be turned into a document.
    Failed(String),
}

pub(super) async fn pull(
    connector: &GmailConnector,
    checkpoint: Option<&Value>,
) -> Result<Batch, ConnectorError> {
    let users = connector.users();
    let mut state = Checkpoint::parse(checkpoint)?;
    if state.at >= connector.mailboxes.len() {
        state.at = 0;
    }
    let mailbox = &connector.mailboxes[state.at];
    let stored = state.mailbox(mailbox.user()).cloned();
    let mut email = stored.as_ref().and_then(|m| m.email.clone());
    let phase = match stored.map(|m| m.phase) {
        // A new pass over a synced mailbox reads its change feed.
        Some(Phase::Synced { history_id }) => Phase::History {
            start: history_id,
            page_token: None,
        },
        Some(phase) => phase,
        None => {
            let profile = mailbox.profile().await?;
            email = Some(profile.email_address);
            Phase::Listing {
                history_id: profile.history_id,
                page_token: None,
            }
        }
    };
    let mut step = Step::default();
    let next = match phase {
        Phase::Listing {
            history_id,
            page_token,
        } => listing_step(connector, mailbox, &mut step, history_id, page_token).await?,
        Phase::History { start, page_token } => {
            match history_step(connector, mailbox, &mut step, &start, page_token).await? {
                Some(next) => next,
                None => {
                    // The change feed is gone: a full listing, anchored at a fresh historyId.
                    tracing::warn!(
                        mailbox = state.at,
                        "Gmail history expired; listing the mailbox again"
                    );
                    let profile = mailbox.profile().await?;
                    email = Some(profile.email_address);
                    listing_step(connector, mailbox, &mut step, profile.history_id, None).await?
                }
            }
        }
        Phase::Synced { .. } => unreachable_synced()?,
    };
    let mailbox_done = matches!(next, Phase::Synced { .. });
    state.set(
        Mailbox {
            user: mailbox.user().to_owned(),
            email,
            phase: next,
        },
        &users,
    );
    let mut done = false;
    if mailbox_done {
        state.at += 1;
        if state.at >= connector.mailboxes.len() {
            state.at = 0;
            done = true;
        }
    }
    tracing::debug!(
        documents = step.documents.len(),
        deleted = step.deleted.len(),
        failures = step.failures.len(),
        done,
        "Gmail batch"
    );
    Ok(Batch {
        documents: step.documents,
        failures: step.failures,
        skipped: step.skipped,
        deleted: step.deleted,
        checkpoint: state.to_value(),
        done,
    })
}

fn unreachable_synced() -> Result<Phase, ConnectorError> {
    Err(ConnectorError::Checkpoint(
        "a synced mailbox was not turned into a history pass".into(),
    ))
}

/// One `threads.list` page, fetched; the next phase.
async fn listing_step(
    connector: &GmailConnector,
    mailbox: &MailboxClient,
    step: &mut Step,
    history_id: String,
    page_token: Option<String>,
) -> Result<Phase, ConnectorError> {
    let config = &connector.config;
    let (q, include_spam_trash) = config.list_scope();
    let listed = mailbox
        .threads(
            q.as_deref(),
            &config.labels,
            include_spam_trash,
            config.batch_size,
            page_token.as_deref(),
        )
        .await?;
    let page = match listed {
        Some(page) => page,
        None => {
            // Page tokens do not last forever; the anchor is kept, so restarting the
            // listing loses nothing.
            tracing::warn!("Gmail refused a listing page token; restarting the listing");
            mailbox
                .threads(
                    q.as_deref(),
                    &config.labels,
                    include_spam_trash,
                    config.batch_size,
                    None,
                )
                .await?
                .ok_or_else(|| {
                    ConnectorError::Protocol("Gmail refused the first listing page".into())
                })?
        }
    };
    let ids: Vec<String> = page.threads.into_iter().map(|t| t.id).collect();
    for (id, fetched) in ids.iter().zip(fetch_all(connector, mailbox, &ids, false).await?) {
        match fetched {
            Fetched::Document(document, skipped) => {
                step.documents.push(*document);
                step.skipped.extend(skipped);
            }
            // Listed but gone or out of scope by now: not a document (the prune agrees).
            Fetched::Gone => {}
            Fetched::Failed(error) => step.failures.push(DocumentFailure {
                source_id: source_id(mailbox.user(), id),
                error,
            }),
        }
    }
    Ok(match page.next_page_token {
        Some(token) => Phase::Listing {
            history_id,
            page_token: Some(token),
        },
        None => Phase::Synced { history_id },
    })
}

/// One `history.list` page, its threads fetched again; `None` when the history expired.
async fn history_step(
    connector: &GmailConnector,
    mailbox: &MailboxClient,
    step: &mut Step,
    start: &str,
    page_token: Option<String>,
) -> Result<Option<Phase>, ConnectorError> {
    let page = match mailbox
        .history(start, connector.config.batch_size, page_token.as_deref())
        .await?
    {
        History::Page(page) => page,
        History::Expired => return Ok(None),
    };
    let mut seen = HashSet::new();
    let ids: Vec<String> = page
        .history
        .iter()
        .flat_map(|record| record.thread_ids())
        .filter(|id| seen.insert(id.to_owned()))
        .map(str::to_owned)
        .collect();
    let fetched = fetch_all(connector, mailbox, &ids, true).await?;
    for (id, fetched) in ids.iter().zip(fetched) {
        match fetched {
            Fetched::Document(document, skipped) => {
                step.documents.push(*document);
                step.skipped.extend(skipped);
            }
            Fetched::Gone => step.deleted.push(source_id(mailbox.user(), id)),
            Fetched::Failed(error) => step.failures.push(DocumentFailure {
                source_id: source_id(mailbox.user(), id),
                error,
            }),
        }
    }
    Ok(Some(match page.next_page_token {
        Some(token) => Phase::History {
            start: start.to_owned(),
            page_token: Some(token),
        },
        None => Phase::Synced {
            history_id: page.history_id,
        },
    }))
}

/// The threads `ids`, fetched [`GET_CONCURRENCY`] at a time, in order.
async fn fetch_all(
    connector: &GmailConnector,
    mailbox: &MailboxClient,
    ids: &[String],
    check_query: bool,
) -> Result<Vec<Fetched>, ConnectorError> {
    futures::stream::iter(0..ids.len())
        .map(|index| fetch(connector, mailbox, &ids[index], check_query))
        .buffered(GET_CONCURRENCY)
        .try_collect()
        .await
}

async fn fetch(
    connector: &GmailConnector,
    mailbox: &MailboxClient,
    id: &str,
    check_query: bool,
) -> Result<Fetched, ConnectorError> {
    let Some(thread) = mailbox.thread(id).await? else {
        return Ok(Fetched::Gone);
    };
    let config = &connector.config;
    // Messages with an excluded label (TRASH, SPAM, …) do not count.
    let counted: Vec<&Message> = thread
        .messages
        .iter()
        .filter(|message| !config.excludes(&message.label_ids))
        .collect();
    if counted.is_empty() {
        return Ok(Fetched::Gone);
    }
    let labels: BTreeSet<String> = counted
        .iter()
        .flat_map(|m| m.label_ids.iter().cloned())
        .collect();
    if !config.labels.iter().all(|label| labels.contains(label)) {
        return Ok(Fetched::Gone);
    }
    // Only Gmail can evaluate its search syntax: a touched thread is in the query's scope
    // when a search for the query restricted to its messages finds it.
    if check_query && config.query.is_some() && !matches_query(connector, mailbox, &counted).await? {
        return Ok(Fetched::Gone);
    }
    render(connector, mailbox, &thread, &counted, labels.into_iter().collect()).await
}

async fn matches_query(
    connector: &GmailConnector,
    mailbox: &MailboxClient,
    messages: &[&Message],
) -> Result<bool, ConnectorError> {
    let ids: Vec<String> = messages
        .iter()
        .filter_map(|m| m.payload.as_ref())
        .filter_map(|p| convert::header(p, "Message-ID"))
        .map(|id| format!("rfc822msgid:{}", id.trim()))
        .collect();
    if ids.is_empty() {
        // Nothing to narrow the search by; keep the thread (the prune settles it).
        return Ok(true);
    }
    let (q, include_spam_trash) = connector.config.list_scope();
    let q = format!("{} ({})", q.unwrap_or_default(), ids.join(" OR "));
    let page = mailbox
        .threads(Some(q.trim()), &connector.config.labels, include_spam_trash, 1, None)
        .await?;
    Ok(page.is_some_and(|page| !page.threads.is_empty()))
}

async fn render(
    connector: &GmailConnector,
    mailbox: &MailboxClient,
    thread: &Thread,
    counted: &[&Message],
    labels: Vec<String>,
) -> Result<Fetched, ConnectorError> {
    let config = &connector.config;
    let sid = source_id(mailbox.user(), &thread.id);
    let mut rendered = Vec::with_capacity(counted.len());
    let mut skipped = Vec::new();
    let mut participants: Vec<String> = Vec::new();
    for message in counted {
        let Some(payload) = message.payload.as_ref() else {
            return Ok(Fetched::Failed(format!("message {} has no payload", message.id)));
        };
        let mut out: RenderedMessage = convert::rendered_headers(message);
        for field in [&out.from, &out.to, &out.cc] {
            for address in convert::addresses(field) {
                if !participants.contains(&address) {
                    participants.push(address);
                }
            }
        }
        out.body = match convert::body_source(payload) {
            BodySource::Inline { part, html } => {
                convert::body_markdown(&convert::inline_text(part), html)
            }
            BodySource::Apart {
                part,
                html,
                attachment_id,
            } => {
                let cap = usize::try_from(super::config::MAX_ATTACHMENT_BYTES).unwrap_or(usize::MAX);
                match mailbox.attachment(&message.id, attachment_id, cap).await? {
                    Some(bytes) => convert::body_markdown(&convert::decode_text(part, &bytes), html),
                    None => String::new(),
                }
            }
            BodySource::None => String::new(),
        };
        for attachment in convert::attachments(payload) {
            let name = attachment.part.filename.clone();
            let wanted = config.include_attachments && convert::is_text_attachment(attachment.part);
            if !wanted {
                out.attachments.push((name, None));
                continue;
            }
            if attachment.size > config.max_attachment_bytes {
                skipped.push(SkippedFile {
                    source_id: format!("{sid}/{}/{name}", message.id),
                    size: attachment.size,
                    reason: format!("larger than {} bytes", config.max_attachment_bytes),
                });
                out.attachments.push((name, None));
                continue;
            }
            let body = attachment.part.body.clone().unwrap_or_default();
            let bytes = match (body.data.as_deref(), body.attachment_id.as_deref()) {
                (Some(data), _) if !data.is_empty() => super::client::decode_base64url(data),
                (_, Some(attachment_id)) => {
                    let cap = usize::try_from(config.max_attachment_bytes).unwrap_or(usize::MAX);
                    mailbox.attachment(&message.id, attachment_id, cap).await?
                }
                _ => None,
            };
            let markdown = bytes.and_then(|bytes| convert::attachment_markdown(attachment.part, &bytes));
            out.attachments.push((name, markdown));
        }
        rendered.push(out);
    }
    let subject = rendered
        .iter()
        .map(|m| m.subject.trim())
        .find(|s| !s.is_empty())
        .unwrap_or("(no subject)")
        .to_owned();
    let first = counted.first().and_then(|m| convert::internal_date(m));
    let last = counted.last().and_then(|m| convert::internal_date(m));
    let mailbox_name = mailbox.user().to_owned();
    let markdown = convert::thread_markdown(&subject, &participants, &rendered);
    let metadata = convert::metadata(
        &mailbox_name,
        &thread.id,
        &labels,
        &participants,
        &rendered,
        first,
        last.clone(),
    );
    let url_user = if mailbox_name == super::ME { "0" } else { mailbox_name.as_str() };
    let document = Document {
        id: Document::stable_id(&connector.scope, &sid),
        source: SOURCE.to_owned(),
        source_id: sid,
        title: Some(subject),
        url: Some(format!(
            "https://mail.google.com/mail/u/{url_user}/#all/{}",
            thread.id
        )),
        markdown,
        metadata,
        updated_at: last.unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned()),
        acl: if mailbox_name == super::ME {
            Vec::new()
        } else {
            vec![mailbox_name]
        },
        file: None,
    };
    Ok(Fetched::Document(Box::new(document), skipped))
}
