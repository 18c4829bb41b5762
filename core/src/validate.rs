//! One validator per rule, for what tenants and customers type: e-mail addresses and the
//! http(s) URLs a tenant points Switchboard at.

/// Whether `e` is an e-mail address Switchboard accepts anywhere (notification targets, a
/// lead's or a booking's address): RFC 5322 syntax as `email_address` reads it, a domain with
/// a dot (no bare hosts), at most 254 characters (the SMTP path limit), and nothing that could
/// break out of a header or an address list (whitespace, control characters, `<`, `>`, `,`,
/// `"`, `;`).
pub fn email(e: &str) -> bool {
    let Some((_, domain)) = e.rsplit_once('@') else {
        return false;
    };
    e.len() <= 254
        && !e.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '"' | ';')
        })
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email_address::EmailAddress::is_valid(e)
}

/// Checks a URL a tenant sets (a model or embedding endpoint, a CRM webhook, a provider's API
/// base): `http` or `https`, a host, at most `max` characters, and no whitespace or control
/// characters anywhere (the URL parser would silently drop some). Returns the parsed URL, or
/// the reason, naming `field`.
pub fn http_url(field: &str, u: &str, max: usize) -> Result<url::Url, String> {
    let bad =
        || format!("`{field}` must be an http:// or https:// URL of at most {max} characters");
    if u.len() > max || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let parsed = url::Url::parse(u).map_err(|_| bad())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_people_type_are_accepted() {
        for ok in [
            "sam@example.com",
            "layla.haddad+sales@sahara.example",
            "o'brien@example.co.uk",
            "user@xn--mgbh0fb.example",
        ] {
            assert!(email(ok), "{ok}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        for bad in [
            "",
            "sam",
            "sam@",
            "@x.com",
            "a b@x.com",
            "a@x",
            "a@x.",
            "a@.x.com",
            "a@@x.com",
            "a@x.com\r\nBcc: victim@y.com",
            "Sam <sam@example.com>",
            "sam@example.com, eve@example.com",
            "\"a b\"@example.com",
            long.as_str(),
        ] {
            assert!(!email(bad), "{bad:?}");
        }
    }

    #[test]
    fn tenant_urls_are_http_with_a_host() {
        assert!(http_url("base_url", "https://api.example.com/v1", 500).is_ok());
        assert!(http_url("base_url", "http://localhost:11434/v1", 500).is_ok());
        for bad in [
            "",
            "api.example.com",
            "ftp://example.com/",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://",
            "https://exa mple.com/",
            "https://example.com/\nx",
            "httpx://example.com",
        ] {
            let err = http_url("base_url", bad, 500).unwrap_err();
            assert!(err.contains("`base_url`"), "{bad:?}: {err}");
        }
        let long = format!("https://example.com/{}", "a".repeat(500));
        assert!(http_url("crm_webhook_url", &long, 500).is_err());
        assert!(http_url("crm_webhook_url", &long, 2000).is_ok());
    }
}
