//! The post-login path: same-site relative paths only, so the sign-in flow cannot be used
//! as an open redirect (`//evil`, `/\evil`, `https://evil`, control characters).

pub const DEFAULT_PATH: &str = "/";
const MAX_LENGTH: usize = 2048;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("redirect_to must be a path on this site starting with a single `/`")]
pub struct InvalidRedirect;

pub fn post_login_path(requested: Option<&str>) -> Result<String, InvalidRedirect> {
    let Some(path) = requested else {
        return Ok(DEFAULT_PATH.to_owned());
    };
    let acceptable = path.len() <= MAX_LENGTH
        && path.starts_with('/')
        && !path.starts_with("//")
        // Browsers read `\` as `/`, so `/\evil.example` would leave the site.
        && !path.contains('\\')
        && !path.chars().any(|c| c.is_control() || c.is_whitespace());
    if acceptable {
        Ok(path.to_owned())
    } else {
        Err(InvalidRedirect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_site_paths() {
        assert_eq!(post_login_path(None).unwrap(), "/");
        assert_eq!(
            post_login_path(Some("/app/docs?x=1#y")).unwrap(),
            "/app/docs?x=1#y"
        );
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil.example",
            "",
            "/\tevil",
            "/ok\r\nSet-Cookie: x",
            "\\\\evil.example",
        ] {
            assert_eq!(post_login_path(Some(bad)), Err(InvalidRedirect), "{bad:?}");
        }
    }
}
