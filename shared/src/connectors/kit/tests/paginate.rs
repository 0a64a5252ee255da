use super::*;
use crate::connectors::kit::SourceAuth;
use crate::http::policy::NetworkPolicy;
use crate::http::GuardedClient;
use axum::extract::{Query, State};
use axum::Json;
use futures::TryStreamExt;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use url::Url;

fn after(style: &PageStyle, body: Value, cursor: Option<&str>) -> After {
    style.after(&body, cursor).unwrap()
}

fn next(cursor: &str) -> After {
    After::Next(cursor.into())
}

const DONE: After = After::Done { resume: None };

#[test]
fn slack_cursor_ends_on_an_empty_next_cursor() {
    let style = PageStyle::SLACK;
    assert_eq!(
        after(
            &style,
            json!({"ok": true, "response_metadata": {"next_cursor": "dGVhbTpD"}}),
            None
        ),
        next("dGVhbTpD")
    );
    assert_eq!(
        after(
            &style,
            json!({"ok": true, "response_metadata": {"next_cursor": ""}}),
            Some("x")
        ),
        DONE
    );
    assert_eq!(after(&style, json!({"ok": true}), Some("x")), DONE);
}

#[test]
fn notion_and_dropbox_cursors_follow_has_more() {
    assert_eq!(
        after(
            &PageStyle::NOTION,
            json!({"has_more": true, "next_cursor": "c2"}),
            None
        ),
        next("c2")
    );
    assert_eq!(
        after(
            &PageStyle::NOTION,
            json!({"has_more": false, "next_cursor": null}),
            Some("c2")
        ),
        DONE
    );
    assert!(
        PageStyle::NOTION
            .after(&json!({"has_more": true, "next_cursor": null}), None)
            .is_err(),
        "more without a cursor"
    );
    assert_eq!(
        after(
            &PageStyle::DROPBOX,
            json!({"has_more": false, "cursor": "AAE-end"}),
            Some("AAE-1")
        ),
        After::Done {
            resume: Some("AAE-end".into())
        },
        "Dropbox's last cursor continues later"
    );
}

#[test]
fn google_page_token() {
    assert_eq!(
        after(
            &PageStyle::GOOGLE,
            json!({"files": [], "nextPageToken": "t2"}),
            None
        ),
        next("t2")
    );
    assert_eq!(
        after(&PageStyle::GOOGLE, json!({"files": []}), Some("t2")),
        DONE
    );
    assert!(PageStyle::GOOGLE
        .after(&json!({"nextPageToken": 7}), None)
        .is_err());
}

#[test]
fn jira_search_token_until_is_last() {
    let style = PageStyle::JIRA_SEARCH;
    assert_eq!(
        after(
            &style,
            json!({"issues": [], "nextPageToken": "t2", "isLast": false}),
            None
        ),
        next("t2")
    );
    assert_eq!(
        after(
            &style,
            json!({"issues": [], "nextPageToken": "t3", "isLast": true}),
            Some("t2")
        ),
        DONE,
        "isLast wins over a token"
    );
    assert_eq!(after(&style, json!({"issues": []}), Some("t2")), DONE);
    assert!(style.after(&json!({"isLast": false}), None).is_err());
    assert!(style.after(&json!({"isLast": "no"}), None).is_err());
}

#[test]
fn graph_next_link_then_delta_link() {
    assert_eq!(
        after(
            &PageStyle::GRAPH,
            json!({"value": [], "@odata.nextLink": "https://graph.microsoft.com/v1.0/drives/d/root/delta?token=2"}),
            None
        ),
        next("https://graph.microsoft.com/v1.0/drives/d/root/delta?token=2")
    );
    assert_eq!(
        after(
            &PageStyle::GRAPH,
            json!({"value": [], "@odata.deltaLink": "https://graph.microsoft.com/v1.0/drives/d/root/delta?token=9"}),
            Some("p")
        ),
        After::Done {
            resume: Some("https://graph.microsoft.com/v1.0/drives/d/root/delta?token=9".into())
        }
    );
}

#[test]
fn atlassian_next_is_relative_to_links_base() {
    let body = json!({"results": [], "_links": {"base": "https://acme.atlassian.net/wiki", "next": "/rest/api/content?cursor=abc"}});
    assert_eq!(
        after(&PageStyle::ATLASSIAN, body, None),
        next("https://acme.atlassian.net/wiki/rest/api/content?cursor=abc")
    );
    assert_eq!(
        after(
            &PageStyle::ATLASSIAN,
            json!({"results": [], "_links": {"base": "x"}}),
            None
        ),
        DONE
    );
}

#[test]
fn jira_offsets_advance_by_the_items_seen_until_total() {
    let style = PageStyle::offset("/comments");
    assert_eq!(
        after(&style, json!({"comments": [1, 2], "total": 5}), None),
        next("2")
    );
    assert_eq!(
        after(&style, json!({"comments": [3, 4], "total": 5}), Some("2")),
        next("4")
    );
    assert_eq!(
        after(&style, json!({"comments": [5], "total": 5}), Some("4")),
        DONE
    );
    assert_eq!(
        after(&style, json!({"comments": [], "total": 9}), Some("4")),
        DONE,
        "an empty page ends"
    );
    assert!(matches!(
        style.after(&json!({"comments": []}), Some("x")),
        Err(ConnectorError::Checkpoint(_))
    ));
}

#[test]
fn a_listing_that_does_not_advance_is_an_error() {
    assert!(PageStyle::GOOGLE
        .after(&json!({"nextPageToken": "same"}), Some("same"))
        .is_err());
}

/// 7 items served 3 per page by cursor (`?cursor=<offset>`), counting requests.
async fn server() -> (Url, Arc<AtomicUsize>) {
    async fn list(
        State(hits): State<Arc<AtomicUsize>>,
        Query(query): Query<HashMap<String, String>>,
    ) -> Json<Value> {
        hits.fetch_add(1, Ordering::SeqCst);
        let start: usize = query.get("cursor").map_or(0, |c| c.parse().unwrap());
        let items: Vec<usize> = (start..(start + 3).min(7)).collect();
        let next = if start + 3 < 7 {
            (start + 3).to_string()
        } else {
            String::new()
        };
        Json(json!({"ok": true, "items": items, "response_metadata": {"next_cursor": next}}))
    }
    let hits = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/api/list", axum::routing::get(list))
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (Url::parse(&format!("http://{address}/api")).unwrap(), hits)
}

fn api(base: Url) -> ApiClient {
    let http = GuardedClient::with_policy(NetworkPolicy::allow_private()).unwrap();
    ApiClient::new(
        "Fake",
        http,
        base,
        SourceAuth::Bearer(crate::connectors::kit::AccessToken::new("t")),
    )
}

fn lister(api: ApiClient) -> Paginator<impl PageRequest> {
    Paginator::new(
        api,
        PageStyle::SLACK,
        |api: &ApiClient, cursor: Option<&str>| {
            Ok(api.get(api.url("/list")?).query_opt("cursor", cursor))
        },
    )
}

#[tokio::test]
async fn pages_stream_until_the_last() {
    let (base, hits) = server().await;
    let paginator = lister(api(base));
    let pages: Vec<Page> = paginator.pages(None).try_collect().await.unwrap();
    assert_eq!(pages.len(), 3);
    let items: Vec<usize> = pages
        .iter()
        .flat_map(|page| page.items::<usize>("/items").unwrap())
        .collect();
    assert_eq!(items, (0..7).collect::<Vec<_>>());
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn one_page_from_a_stored_cursor() {
    let (base, hits) = server().await;
    let paginator = lister(api(base));
    let page = paginator.page(Some("3")).await.unwrap();
    assert_eq!(page.items::<usize>("/items").unwrap(), vec![3, 4, 5]);
    assert_eq!(page.next.as_deref(), Some("6"));
    let last = paginator.page(page.next.as_deref()).await.unwrap();
    assert!(last.is_last());
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn collect_ends_at_a_gone_status() {
    let (base, _) = server().await;
    let missing = Paginator::new(
        api(base.clone()),
        PageStyle::SLACK,
        |api: &ApiClient, cursor: Option<&str>| {
            Ok(api
                .get(api.url("/nothing-here")?)
                .query_opt("cursor", cursor))
        },
    );
    let gone = missing
        .collect(5, Some(StatusCode::NOT_FOUND))
        .await
        .unwrap();
    assert_eq!((gone.pages.len(), gone.end), (0, End::Gone));
    assert!(matches!(
        missing.page(None).await,
        Err(ConnectorError::Protocol(_))
    ));
    assert!(matches!(
        missing.collect(5, None).await,
        Err(ConnectorError::Protocol(_))
    ));
    let all = lister(api(base))
        .collect(5, Some(StatusCode::NOT_FOUND))
        .await
        .unwrap();
    assert_eq!((all.pages.len(), all.end), (3, End::Complete));
    assert_eq!(all.items::<usize>("/items").unwrap().len(), 7);
}

#[tokio::test]
async fn items_stop_at_max_pages_and_say_so() {
    let (base, _) = server().await;
    let paginator = lister(api(base));
    let (items, complete) = paginator.items::<usize>("/items", 2).await.unwrap();
    assert_eq!(items, vec![0, 1, 2, 3, 4, 5]);
    assert!(!complete);
    let (all, complete) = paginator.items::<usize>("/items", 10).await.unwrap();
    assert_eq!(all.len(), 7);
    assert!(complete);
}
