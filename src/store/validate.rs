//! Input rules shared by the admin API and the CLI, so both refuse the same
//! things with the same words.

use super::StoreError;

/// Longest accepted account or server name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest accepted Malomo API key, in bytes.
pub const MAX_API_KEY_LEN: usize = 512;
/// Longest accepted base URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// Longest accepted filter value and most values per filter list.
pub const MAX_FILTER_VALUE_LEN: usize = 64;
pub const MAX_FILTER_VALUES: usize = 64;
/// Smallest accepted answer budget, in bytes: a list page of one compact
/// item and its `next_cursor` must fit.
pub const MIN_ANSWER_BUDGET: u64 = 1024;
/// Largest accepted answer budget, in bytes: the default cap on an
/// upstream answer (`--max-upstream-body`), since an answer is cut from one.
pub const MAX_ANSWER_BUDGET: u64 = crate::runtime::DEFAULT_MAX_UPSTREAM_BODY as u64;

fn invalid(field: &str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Names: 1 to 100 printable characters, no surrounding whitespace.
pub fn name(field: &str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(
            field,
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if value.chars().any(is_odd_char) {
        return Err(invalid(field, "must contain printable characters only"));
    }
    if value.trim() != value {
        return Err(invalid(field, "must not start or end with whitespace"));
    }
    Ok(())
}

/// Control characters, and the invisible ones that make two names look alike
/// or reorder text when displayed.
fn is_odd_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// API keys travel in an `Authorization` header: visible ASCII only.
pub fn api_key(field: &str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.len() > MAX_API_KEY_LEN {
        return Err(invalid(
            field,
            format!("must be at most {MAX_API_KEY_LEN} characters"),
        ));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            field,
            "must contain visible ASCII characters only (no spaces or control characters)",
        ));
    }
    Ok(())
}

/// An absolute http(s) URL without credentials, query or fragment.
pub fn base_url(field: &str, value: &str) -> Result<(), StoreError> {
    if value.len() > MAX_URL_LEN {
        return Err(invalid(
            field,
            format!("must be at most {MAX_URL_LEN} characters"),
        ));
    }
    let url = url::Url::parse(value)
        .map_err(|e| invalid(field, format!("must be an absolute http(s) URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(field, "must be an absolute http(s) URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(field, "must not contain credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(field, "must not have a query or fragment"));
    }
    Ok(())
}

/// A server's answer budget: bytes of JSON, from [`MIN_ANSWER_BUDGET`] to
/// [`MAX_ANSWER_BUDGET`].
pub fn answer_budget(field: &str, value: u64) -> Result<u32, StoreError> {
    if !(MIN_ANSWER_BUDGET..=MAX_ANSWER_BUDGET).contains(&value) {
        return Err(invalid(
            field,
            format!(
                "must be from {MIN_ANSWER_BUDGET} to {MAX_ANSWER_BUDGET} bytes (the cap on an \
                 upstream answer), got {value}"
            ),
        ));
    }
    u32::try_from(value).map_err(|_| invalid(field, "is too large"))
}

/// Filter lists: bounded, and each value a plain identifier. Whether the
/// value is known is [`crate::access::ToolFilter::validate_against`]'s job.
pub fn filter_values(field: &str, values: &[String]) -> Result<(), StoreError> {
    if values.len() > MAX_FILTER_VALUES {
        return Err(invalid(
            field,
            format!("must have at most {MAX_FILTER_VALUES} values"),
        ));
    }
    for v in values {
        let ok = !v.is_empty()
            && v.len() <= MAX_FILTER_VALUE_LEN
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            let shown: String = v.chars().take(MAX_FILTER_VALUE_LEN).collect();
            return Err(invalid(
                field,
                format!("{shown:?} is not a valid value (letters, digits, '_' and '-' only)"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_odd_characters_and_length() {
        assert!(name("name", "Acme store 🚚").is_ok());
        assert!(name("name", "x'; DROP TABLE mcp_servers; --").is_ok());
        assert!(name("name", "").is_err());
        assert!(name("name", "a\nb").is_err());
        assert!(name("name", "a\u{202E}b").is_err());
        assert!(name("name", " padded").is_err());
        assert!(name("name", &"x".repeat(101)).is_err());
        assert!(name("name", &"é".repeat(100)).is_ok());
    }

    #[test]
    fn base_urls_must_be_plain_http() {
        assert!(base_url("base_url", "http://127.0.0.1:9000").is_ok());
        assert!(base_url("base_url", "https://api.gomalomo.com/v1").is_ok());
        assert!(base_url("base_url", "file:///etc/passwd").is_err());
        assert!(base_url("base_url", "https://u:p@host").is_err());
        assert!(base_url("base_url", "not a url").is_err());
    }

    #[test]
    fn answer_budgets_stay_between_one_item_and_the_upstream_cap() {
        assert_eq!(answer_budget("answer_budget", 1024).ok(), Some(1024));
        assert_eq!(
            answer_budget("answer_budget", MAX_ANSWER_BUDGET).ok(),
            Some(4 * 1024 * 1024)
        );
        for bad in [0, 1023, MAX_ANSWER_BUDGET + 1, u64::MAX] {
            let err = answer_budget("answer_budget", bad)
                .err()
                .map(|e| e.to_string());
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.starts_with("answer_budget: ")),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn api_keys_are_header_safe() {
        assert!(api_key("malomo_api_key", "sk_test_abc").is_ok());
        assert!(api_key("malomo_api_key", "sk test").is_err());
        assert!(api_key("malomo_api_key", "sk\r\nX-Evil: 1").is_err());
    }
}
