//! The fake's site routes: sites by path and id, a site's drives, site pages with
//! `canvasLayout` (two per answer, `$skiptoken` paging; 400 to a refused `$expand`).

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::super::{parse_query, Shared};
use super::routes::{not_found, query, select, site_refusal};
use super::world::FakeSite;
use crate::microsoft::graph_error;

fn site_json(site: &FakeSite, base: &str) -> Value {
    json!({
        "@odata.context": format!("{base}/$metadata#sites/$entity"),
        "id": site.id,
        "name": site.path.rsplit('/').next().filter(|s| !s.is_empty()).unwrap_or(&site.host),
        "displayName": site.display_name,
        "webUrl": site.web_url(),
        "createdDateTime": "2025-03-01T10:00:00Z",
        "siteCollection": {"hostname": site.host},
    })
}

fn percent_decode(raw: &str) -> String {
    parse_query(&format!(
        "x={}",
        raw.replace('+', "%2B").replace('&', "%26")
    ))
    .into_iter()
    .next()
    .map(|(_, v)| v)
    .unwrap_or_default()
}

/// `/sites/{host}:/{path}`, `/sites/{id}`, `/sites/{id}/drives`, `/sites/{id}/pages/...`.
pub(super) async fn sites(State(shared): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    if let Err(response) = shared.gate("GET", &uri, &headers) {
        return response;
    }
    let base = shared.graph_base();
    let q = query(&uri);
    let path = uri.path();
    let rest = path
        .strip_prefix("/v1.0")
        .unwrap_or(path)
        .strip_prefix("/sites/")
        .unwrap_or_default()
        .to_owned();
    let world = shared.drives();
    if let Some((host, path)) = rest.split_once(':') {
        let path = percent_decode(path).trim_end_matches('/').to_owned();
        let found = world.sites.iter().find(|s| {
            s.host.eq_ignore_ascii_case(&percent_decode(host)) && s.path.eq_ignore_ascii_case(&path)
        });
        return match found {
            Some(site) => site_refusal(site).unwrap_or_else(|| {
                Json(select(
                    site_json(site, &base),
                    q.get("$select").map(String::as_str),
                ))
                .into_response()
            }),
            None => graph_error(
                StatusCode::NOT_FOUND,
                "itemNotFound",
                "Requested site could not be found",
            ),
        };
    }
    let segments: Vec<String> = rest.split('/').map(percent_decode).collect();
    let Some(site) = world.sites.iter().find(|s| {
        s.id.eq_ignore_ascii_case(&segments[0])
            || (s.path == "/" && s.host.eq_ignore_ascii_case(&segments[0]))
    }) else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "Requested site could not be found",
        );
    };
    if let Some(refusal) = site_refusal(site) {
        return refusal;
    }
    let tail: Vec<&str> = segments[1..].iter().map(String::as_str).collect();
    match tail.as_slice() {
        [] => Json(select(
            site_json(site, &base),
            q.get("$select").map(String::as_str),
        ))
        .into_response(),
        ["drives"] => {
            let value: Vec<Value> = world
                .drives
                .iter()
                .filter(|d| d.site.as_deref() == Some(site.id.as_str()))
                .map(|d| {
                    json!({"id": d.id, "name": d.name, "driveType": "documentLibrary",
                    "webUrl": format!("{}/{}", site.web_url(), d.name.replace(' ', "%20")),
                    "createdDateTime": "2025-03-01T10:00:00Z"})
                })
                .collect();
            Json(json!({"@odata.context": format!("{base}/$metadata#drives"), "value": value}))
                .into_response()
        }
        ["pages", "microsoft.graph.sitePage"] => pages(site, &q, &base, &uri),
        ["pages", page, "microsoft.graph.sitePage"] => {
            match site.pages.iter().find(|p| p.id == *page && !p.deleted) {
                Some(page) => {
                    let mut value = page_json(
                        site,
                        page,
                        q.get("$expand").is_some_and(|e| e.contains("canvasLayout")),
                    );
                    value["@odata.context"] = json!(format!(
                        "{base}/$metadata#sites('{}')/pages/microsoft.graph.sitePage/$entity",
                        site.id
                    ));
                    Json(value).into_response()
                }
                None => not_found("page"),
            }
        }
        _ => not_found("site resource"),
    }
}

fn page_json(site: &FakeSite, page: &super::world::FakePage, expand: bool) -> Value {
    let mut value = json!({
        "@odata.type": "#microsoft.graph.sitePage",
        "@odata.etag": format!("\"{{{}}},{}\"", page.id, page.version),
        "id": page.id,
        "name": page.name,
        "title": page.title,
        "webUrl": format!("SitePages/{}", page.name),
        "eTag": format!("\"{{{}}},{}\"", page.id, page.version),
        "pageLayout": "article",
        "createdDateTime": "2025-03-01T10:00:00Z",
        "lastModifiedDateTime": page.modified,
        "createdBy": {"user": {"displayName": "Megan Bowen", "email": "megan@contoso.example"}},
        "lastModifiedBy": {"user": {"displayName": "Megan Bowen", "email": "megan@contoso.example"}},
        "parentReference": {"siteId": site.id},
    });
    if expand {
        value["canvasLayout"] = page.canvas.clone();
    }
    value
}

/// Two pages per answer (so paging is exercised), `$skiptoken` in the next link.
fn pages(site: &FakeSite, q: &HashMap<String, String>, base: &str, uri: &Uri) -> Response {
    let expand = q.get("$expand").is_some_and(|e| e.contains("canvasLayout"));
    if expand && site.refuse_list_expand {
        return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Parsing OData Select and Expand failed: Could not find a property named 'canvasLayout'.");
    }
    let offset: usize = q
        .get("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let live: Vec<_> = site.pages.iter().filter(|p| !p.deleted).collect();
    let value: Vec<Value> = live
        .iter()
        .skip(offset)
        .take(2)
        .map(|p| page_json(site, p, expand))
        .collect();
    let mut body = json!({
        "@odata.context": format!("{base}/$metadata#sites('{}')/pages/microsoft.graph.sitePage", site.id),
        "value": value,
    });
    if offset + 2 < live.len() {
        let mut link = format!(
            "{base}{}?$skiptoken={}",
            uri.path().trim_start_matches("/v1.0"),
            offset + 2
        );
        if expand {
            link.push_str("&$expand=canvasLayout");
        }
        body["@odata.nextLink"] = json!(link);
    }
    Json(body).into_response()
}
