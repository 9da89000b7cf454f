//! What every REST answer shares: admission (token, daily limit, faults), error bodies, `Sforce-Limit-Info`, gzip, versions.

use super::*;

/// Compresses a response body with gzip (fast level) when the request accepts it. Streamed
/// bodies (the dropped-connection fault) are left as they are.
pub(super) async fn gzip_when_asked(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let wants = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|e| e.split(';').next().map(str::trim) == Some("gzip"))
        });
    let resp = next.run(req).await;
    let size = axum::body::HttpBody::size_hint(resp.body()).exact();
    if !wants
        || resp.headers().contains_key(header::CONTENT_ENCODING)
        || size.is_none_or(|n| n < 1024)
    {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(raw) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let gz = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(
            Vec::with_capacity(raw.len() / 4),
            flate2::Compression::fast(),
        );
        e.write_all(&raw).and_then(|_| e.finish())
    })
    .await;
    match gz {
        Ok(Ok(z)) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            parts
                .headers
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            parts
                .headers
                .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            Response::from_parts(parts, Body::from(z))
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

pub(super) fn rest_error(st: &Inner, status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!([{"message": message, "errorCode": code}]).to_string();
    with_limit(
        st,
        (
            status,
            [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
            body,
        )
            .into_response(),
    )
}

pub(super) fn with_limit(st: &Inner, mut r: Response) -> Response {
    let max = st.daily_limit.load(Ordering::Relaxed);
    let used = st.requests.load(Ordering::Relaxed).min(max);
    if let Ok(v) = HeaderValue::from_str(&format!("api-usage={used}/{max}")) {
        r.headers_mut().insert("Sforce-Limit-Info", v);
    }
    r
}

pub(super) fn json_ok(st: &Inner, body: impl Into<Body>) -> Response {
    with_limit(
        st,
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
            body.into(),
        )
            .into_response(),
    )
}

pub(super) async fn versions() -> Response {
    let body = serde_json::json!([
        {"label": "Spring '24", "url": "/services/data/v60.0", "version": "60.0"},
        {"label": "Summer '24", "url": "/services/data/v61.0", "version": "61.0"},
        {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"},
    ]);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

pub(super) async fn not_found() -> Response {
    let body = serde_json::json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]).to_string();
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body,
    )
        .into_response()
}

/// What every REST request passes: the latency fault, authentication, the daily request
/// counter (403 `REQUEST_LIMIT_EXCEEDED` past it) and injected 503s. `Ok`: the request's number.
pub(super) async fn admit(st: &Inner, headers: &HeaderMap) -> Result<u64, Response> {
    if let Some(d) = st.cfg.faults.latency {
        tokio::time::sleep(d).await;
    }
    // Authentication.
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let tok = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("OAuth "))
        .map(str::trim);
    let valid = match tok {
        None => false,
        Some(t) => {
            let map = st.tokens.lock().expect("token map");
            match map.get(t) {
                None => false,
                Some(issued) => st
                    .cfg
                    .faults
                    .token_ttl
                    .map(|ttl| issued.elapsed() < ttl)
                    .unwrap_or(true),
            }
        }
    };
    if !valid {
        return Err(rest_error(
            st,
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        ));
    }
    let n = st.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let daily_limit = st.daily_limit.load(Ordering::Relaxed);
    if n > daily_limit {
        return Err(rest_error(
            st,
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        ));
    }
    if let Some(k) = st.cfg.faults.fail_every {
        if k > 0 && n % k == 0 {
            return Err(rest_error(
                st,
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVER_UNAVAILABLE",
                "Server Unavailable",
            ));
        }
    }
    Ok(n)
}

/// Counts query requests; true for the first N when `slow_first_queries` is set.
pub(super) fn is_slow(st: &Inner) -> bool {
    let n = st.query_requests.fetch_add(1, Ordering::Relaxed) + 1;
    matches!(st.cfg.faults.slow_first_queries, Some((k, _)) if n <= k)
}
