use super::*;
use serde_json::json;

const NOW: i64 = 1_700_000_000;

fn parse(shape: TokenShape, status: u16, body: Value) -> Result<TokenSet, TokenError> {
    let separator = if shape == TokenShape::Slack { ',' } else { ' ' };
    parse_token_response(shape, separator, status, body.to_string().as_bytes(), NOW)
}

#[test]
fn google_and_microsoft_standard_responses() {
    // Google: refresh_token on first consent only; scopes space-separated.
    let google = parse(
        TokenShape::Standard,
        200,
        json!({"access_token": "ya29.a", "expires_in": 3599, "refresh_token": "1//r",
               "scope": "openid https://www.googleapis.com/auth/drive.readonly",
               "token_type": "Bearer", "id_token": "eyJ..."}),
    )
    .unwrap();
    assert_eq!(google.access_token, "ya29.a");
    assert_eq!(google.refresh_token.as_deref(), Some("1//r"));
    assert_eq!(google.expires_at, Some(NOW + 3599));
    assert_eq!(
        google.scopes,
        ["openid", "https://www.googleapis.com/auth/drive.readonly"]
    );
    let refreshed = parse(
        TokenShape::Standard,
        200,
        json!({"access_token": "ya29.b", "expires_in": "3600", "token_type": "Bearer"}),
    )
    .unwrap();
    assert_eq!(refreshed.refresh_token, None);
    assert_eq!(refreshed.expires_at, Some(NOW + 3600));

    // Microsoft identity platform v2: ext_expires_in, a rotated refresh token.
    let ms = parse(
        TokenShape::Standard,
        200,
        json!({"token_type": "Bearer", "scope": "Files.Read.All offline_access",
               "expires_in": 4115, "ext_expires_in": 4115,
               "access_token": "eyJ0eXAi", "refresh_token": "0.AXEA"}),
    )
    .unwrap();
    assert_eq!(ms.refresh_token.as_deref(), Some("0.AXEA"));
    assert_eq!(ms.scopes, ["Files.Read.All", "offline_access"]);

    let dead = parse(
        TokenShape::Standard,
        400,
        json!({"error": "invalid_grant",
               "error_description": "AADSTS70008: The refresh token has expired."}),
    )
    .unwrap_err();
    assert!(dead.is_invalid_grant(), "{dead:?}");
    assert!(dead.to_string().contains("AADSTS70008"));
    let client = parse(
        TokenShape::Standard,
        401,
        json!({"error": "invalid_client", "error_description": "Unauthorized"}),
    )
    .unwrap_err();
    assert!(matches!(client, TokenError::Refused(_)), "{client:?}");
    assert!(matches!(
        parse(
            TokenShape::Standard,
            503,
            json!({"error": "temporarily_unavailable"})
        ),
        Err(TokenError::Unavailable(_))
    ));
    assert!(matches!(
        parse_token_response(TokenShape::Standard, ' ', 502, b"<html>", NOW),
        Err(TokenError::Unavailable(_))
    ));
}

#[test]
fn slack_ok_false_bot_and_user_tokens() {
    // HTTP 200 with ok:false is an error; a dead refresh token is invalid_grant.
    let dead = parse(
        TokenShape::Slack,
        200,
        json!({"ok": false, "error": "invalid_refresh_token"}),
    )
    .unwrap_err();
    assert!(dead.is_invalid_grant(), "{dead:?}");
    assert!(matches!(
        parse(
            TokenShape::Slack,
            200,
            json!({"ok": false, "error": "bad_client_secret"})
        ),
        Err(TokenError::Refused(_))
    ));
    assert!(matches!(
        parse(
            TokenShape::Slack,
            200,
            json!({"ok": false, "error": "ratelimited"})
        ),
        Err(TokenError::Unavailable(_))
    ));

    let bot = parse(
        TokenShape::Slack,
        200,
        json!({"ok": true, "access_token": "xoxb-17653672481", "token_type": "bot",
               "scope": "commands,incoming-webhook", "bot_user_id": "U0KRQLJ9H",
               "app_id": "A0KRD7HC3", "team": {"name": "Slack Softball Team", "id": "T9TK3CUKW"},
               "enterprise": null, "expires_in": 43200, "refresh_token": "xoxe-1-abc",
               "authed_user": {"id": "U1234", "scope": "chat:write",
                               "access_token": "xoxp-1234", "token_type": "user"}}),
    )
    .unwrap();
    assert_eq!(bot.access_token, "xoxb-17653672481");
    assert_eq!(bot.refresh_token.as_deref(), Some("xoxe-1-abc"));
    assert_eq!(bot.expires_at, Some(NOW + 43200));
    assert_eq!(bot.scopes, ["commands", "incoming-webhook"]);
    assert_eq!(bot.account.workspace_id.as_deref(), Some("T9TK3CUKW"));
    assert_eq!(
        bot.account.workspace_name.as_deref(),
        Some("Slack Softball Team")
    );
    assert_eq!(bot.account.account_id.as_deref(), Some("U1234"));
    assert_eq!(bot.account.bot_id.as_deref(), Some("U0KRQLJ9H"));

    let user_only = parse(
        TokenShape::Slack,
        200,
        json!({"ok": true, "app_id": "A1", "team": {"id": "T1", "name": "T"},
               "authed_user": {"id": "U1", "scope": "search:read,channels:history",
                               "access_token": "xoxp-9", "token_type": "user",
                               "refresh_token": "xoxe-1-u", "expires_in": 43200}}),
    )
    .unwrap();
    assert_eq!(user_only.access_token, "xoxp-9");
    assert_eq!(user_only.refresh_token.as_deref(), Some("xoxe-1-u"));
    assert_eq!(user_only.scopes, ["search:read", "channels:history"]);
}

#[test]
fn notion_workspace_and_errors() {
    let notion = parse(
        TokenShape::Notion,
        200,
        json!({"access_token": "ntn_abc", "token_type": "bearer", "refresh_token": "nrt_1",
               "bot_id": "b-1", "workspace_name": "Ada's Notion Workspace",
               "workspace_icon": "https://x/i.png", "workspace_id": "w-1",
               "owner": {"type": "user", "user": {"object": "user", "id": "u-1",
                         "name": "Ada", "person": {"email": "ada@example.com"}}},
               "duplicated_template_id": null, "request_id": "r"}),
    )
    .unwrap();
    assert_eq!(notion.refresh_token.as_deref(), Some("nrt_1"));
    assert_eq!(notion.expires_at, None);
    assert_eq!(notion.account.workspace_id.as_deref(), Some("w-1"));
    assert_eq!(
        notion.account.workspace_name.as_deref(),
        Some("Ada's Notion Workspace")
    );
    assert_eq!(notion.account.bot_id.as_deref(), Some("b-1"));
    assert_eq!(notion.account.account_name.as_deref(), Some("Ada"));
    let dead = parse(
        TokenShape::Notion,
        400,
        json!({"object": "error", "status": 400, "code": "invalid_grant",
               "message": "Invalid refresh token."}),
    )
    .unwrap_err();
    assert!(dead.is_invalid_grant(), "{dead:?}");
    assert!(dead.to_string().contains("Invalid refresh token."));
}

#[test]
fn dropbox_discord_and_form_encoded_answers() {
    let dropbox = parse(
        TokenShape::Standard,
        200,
        json!({"access_token": "sl.abc", "expires_in": 14400, "token_type": "bearer",
               "scope": "files.content.read", "refresh_token": "r", "account_id": "dbid:A",
               "uid": "12345"}),
    )
    .unwrap();
    assert_eq!(dropbox.account.account_id.as_deref(), Some("dbid:A"));
    let discord = parse(
        TokenShape::Standard,
        200,
        json!({"access_token": "d", "token_type": "Bearer", "expires_in": 604800,
               "refresh_token": "r", "scope": "identify guilds",
               "guild": {"id": "g1", "name": "Guild"}}),
    )
    .unwrap();
    assert_eq!(discord.account.workspace_id.as_deref(), Some("g1"));
    let form = parse_token_response(
        TokenShape::Standard,
        ' ',
        200,
        b"access_token=gho_1&scope=repo&token_type=bearer",
        NOW,
    )
    .unwrap();
    assert_eq!(form.access_token, "gho_1");
    assert!(matches!(
        parse(TokenShape::Standard, 200, json!({"token_type": "bearer"})),
        Err(TokenError::Protocol(_))
    ));
}

#[test]
fn errors_are_bounded_and_token_sets_redacted() {
    let long = "x".repeat(5000);
    let error = parse(
        TokenShape::Standard,
        400,
        json!({"error": "invalid_request", "error_description": long}),
    )
    .unwrap_err();
    assert!(error.to_string().len() < 300);
    let tokens = parse(
        TokenShape::Standard,
        200,
        json!({"access_token": "very-secret", "refresh_token": "also-secret"}),
    )
    .unwrap();
    let debug = format!("{tokens:?}");
    assert!(!debug.contains("secret"), "{debug}");
}

#[test]
fn revocation_outcomes() {
    assert_eq!(revoke_outcome(TokenShape::Standard, 200, b""), Ok(true));
    assert_eq!(
        revoke_outcome(TokenShape::Standard, 400, br#"{"error":"invalid_token"}"#),
        Ok(true)
    );
    assert_eq!(
        revoke_outcome(TokenShape::Slack, 200, br#"{"ok":true,"revoked":true}"#),
        Ok(true)
    );
    assert_eq!(
        revoke_outcome(
            TokenShape::Slack,
            200,
            br#"{"ok":false,"error":"invalid_auth"}"#
        ),
        Ok(true)
    );
    assert!(revoke_outcome(TokenShape::Standard, 401, br#"{"error":"invalid_client"}"#).is_err());
    assert!(matches!(
        revoke_outcome(TokenShape::Standard, 503, b""),
        Err(TokenError::Unavailable(_))
    ));
}
