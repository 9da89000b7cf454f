//! OAuth 2.0 client credentials: the token endpoint and its error bodies.

use super::*;

pub(super) fn oauth_error(error: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": error, "error_description": description}).to_string();
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body,
    )
        .into_response()
}

pub(super) async fn token(
    State(st): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(d) = st.cfg.faults.latency {
        tokio::time::sleep(d).await;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let host = host.split(':').next().unwrap_or("");
    if host == "login.salesforce.com" || host == "test.salesforce.com" {
        return oauth_error("invalid_grant", "request not supported on this domain");
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return oauth_error("unsupported_grant_type", "grant type not supported");
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error("unsupported_grant_type", "grant type not supported");
    }
    let (mut id, mut secret) = (
        form.get("client_id").cloned(),
        form.get("client_secret").cloned(),
    );
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
    {
        use base64_decode as b64;
        if let Some((i, s)) = b64(basic).and_then(|d| {
            d.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        }) {
            id = Some(i);
            secret = Some(s);
        }
    }
    if id.as_deref() != Some(st.cfg.client_id.as_str()) {
        return oauth_error("invalid_client_id", "client identifier invalid");
    }
    if secret.as_deref() != Some(st.cfg.client_secret.as_str()) {
        return oauth_error("invalid_client", "invalid client credentials");
    }
    if st.cfg.faults.no_run_as_user {
        return oauth_error("invalid_grant", "no client credentials user enabled");
    }
    if st.cfg.faults.no_scopes {
        return oauth_error("invalid_grant", "no valid scopes defined");
    }
    let mut rng = rand::rng();
    let tok: String = (0..48)
        .map(|_| {
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
            A[rng.random_range(0..A.len())] as char
        })
        .collect();
    let access_token = format!("00D5g000004EMUL!AQ{tok}");
    st.tokens
        .lock()
        .expect("token map")
        .insert(access_token.clone(), Instant::now());
    let base = st.base_url.lock().expect("base url").clone();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let body = serde_json::json!({
        "access_token": access_token,
        "signature": "ZW11bGF0b3Itc2lnbmF0dXJl",
        "scope": "api",
        "instance_url": base,
        "id": format!("{base}/id/{}/0055g00000EMULAAA", st.cfg.org_id),
        "token_type": "Bearer",
        "issued_at": now_ms.to_string(),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

pub(super) fn base64_decode(s: &str) -> Option<String> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.trim().bytes() {
        if c == b'=' {
            break;
        }
        let v = A.iter().position(|&x| x == c)? as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    String::from_utf8(out).ok()
}
