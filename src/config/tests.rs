use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("driftless.toml"), Path::new("/proj"))
}

#[test]
fn full_example_parses() {
    let c = parse(
        r#"
site = "dist"
[env.local]
store = "file://.driftless/local"
[env.staging]
store = "s3://example-site-staging/www"
region = "us-east-1"
url = "https://staging.example.com"
cdn = { cloudfront = "E2EXAMPLE" }
[env.prod]
store = "s3://example-site-prod"
account = "123456789012"
promote_from = "staging"
[[rules]]
match = "assets/**"
cache_control = "public, max-age=31536000, immutable"
[[features]]
name = "checkout"
file = "index.html"
contains = 'id="stripe-checkout"'
[limits]
max_deletes = 10
[edge]
spa_fallback = "index.html"
"#,
    )
    .unwrap();
    assert_eq!(c.site, Path::new("/proj/dist"));
    assert_eq!(
        c.envs["local"].store,
        StoreUrl::File("/proj/.driftless/local".into())
    );
    assert_eq!(
        c.envs["staging"].store,
        StoreUrl::S3 {
            bucket: "example-site-staging".into(),
            prefix: "www".into()
        }
    );
    assert_eq!(c.envs["prod"].promote_from.as_deref(), Some("staging"));
    assert_eq!(c.envs["prod"].limits.max_deletes, 10);
    assert!(c.rules[0].matches("assets/app.1234.js"));
    assert!(!c.rules[0].matches("index.html"));
}

#[test]
fn errors_point_at_line_and_key() {
    let err = parse("site = \"dist\"\n[env.prod]\nstore = \"ftp://x\"\n").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("driftless.toml:3:9: env.prod.store:"),
        "{msg}"
    );

    let err = parse("site = \"dist\"\n[env.prod]\nstor = \"file://x\"\n").unwrap_err();
    assert!(err.to_string().contains("driftless.toml:3:1"), "{err}");
    assert!(err.to_string().contains("stor"), "{err}");

    let err = parse("site = \"dist\"\n[env.a]\nstore = \"file://a\"\npromote_from = \"nope\"\n")
        .unwrap_err();
    assert!(err.to_string().contains("promote_from"), "{err}");

    let err = parse("site = [").unwrap_err();
    assert!(err.to_string().starts_with("driftless.toml:1:"), "{err}");
}

/// Regression (issue 20.5): header values with control characters were accepted
/// (`serve` dropped them, S3 failed with a truncated message).
#[test]
fn header_values_are_checked_naming_key_and_line() {
    let base = "site = \"dist\"\n[env.prod]\nstore = \"file://s\"\n";
    for (tail, want) in [
        (
            "[[rules]]\nmatch = \"**\"\ncache_control = \"max-age=60\\r\\nX-Evil: 1\"\n",
            "driftless.toml:6:17: rules[0].cache_control: \"max-age=60\\r\\nX-Evil: 1\" contains the control character '\\r'",
        ),
        (
            "[[rules]]\nmatch = \"**\"\ncontent_type = \"text/html\\u0000\"\n",
            "driftless.toml:6:16: rules[0].content_type:",
        ),
        (
            "[edge]\nheaders = { \"X-Ok\" = \"1\", \"X-Bad\" = \"a\\nb\" }\n",
            "driftless.toml:5:37: edge.headers.X-Bad:",
        ),
        (
            "[edge]\nheaders = { \"Bad Name\" = \"1\" }\n",
            "driftless.toml:5:26: edge.headers: \"Bad Name\" is not a header name",
        ),
        (
            "[edge]\nredirects = [\n  { from = \"/a\", to = \"/b\" },\n  { from = \"/c\", to = \"/d\\r\\n\" },\n]\n",
            "driftless.toml:7:23: edge.redirects[1].to:",
        ),
        (
            "[[rules]]\nmatch = \"**\"\ncache_control = \"café\"\n",
            "driftless.toml:6:17: rules[0].cache_control: \"café\" is not a valid header value",
        ),
    ] {
        let err = parse(&format!("{base}{tail}")).unwrap_err().to_string();
        assert!(err.starts_with(want), "{tail}\n{err}");
    }
}

#[test]
fn glob_errors_have_a_line() {
    let err = parse("site = \"dist\"\nignore = [\"*.map\", \"a[\"]\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("driftless.toml:2:20: ignore:"), "{err}");
}

/// Regression (issue 20.14): every config error names file:line:col, and the
/// top-level [limits] is named as such (not as an environment's).
#[test]
fn every_config_error_has_a_line() {
    let base = "site = \"dist\"\n[env.local]\nstore = \"file://s\"\n";
    for (tail, want) in [
        (
            "[limits]\nmax_delete_share = 2.0\n",
            "driftless.toml:5:20: limits.max_delete_share = 2:",
        ),
        (
            "[env.local.limits]\nmax_delete_share = 2.0\n",
            "driftless.toml:5:20: env.local.limits.max_delete_share = 2:",
        ),
        (
            "[edge]\nredirects = [{ from = \"old\", to = \"/new\" }]\n",
            "driftless.toml:5:23: edge.redirects[0].from:",
        ),
        (
            "[edge]\nredirects = [{ from = \"/old\", to = \"/new\", status = 200 }]\n",
            "driftless.toml:5:53: edge.redirects[0]:",
        ),
        (
            "[retention]\nremoved_grace = \"soon\"\n",
            "driftless.toml:5:17: retention.removed_grace:",
        ),
        (
            "[env.local.watch]\ninterval = \"often\"\n",
            "driftless.toml:5:12: env.local.watch.interval:",
        ),
        (
            "[env.local.watch]\nerror_rate = 5.0\n",
            "driftless.toml:5:14: env.local.watch.error_rate:",
        ),
        (
            "[[notify]]\nurl = \"ftp://x\"\n",
            "driftless.toml:5:7: notify[0].url:",
        ),
        (
            "[env.local.cdn]\ncloudfront = \"E1\"\nwait_seconds = 9999\n",
            "driftless.toml:6:16: env.local.cdn.wait_seconds = 9999:",
        ),
    ] {
        let err = parse(&format!("{base}{tail}")).unwrap_err().to_string();
        assert!(err.starts_with(want), "{tail}\n{err}");
    }
}

#[test]
fn unknown_env_lists_known_ones() {
    let c =
        parse("site = \"d\"\n[env.staging]\nstore=\"file://s\"\n[env.prod]\nstore=\"file://p\"\n")
            .unwrap();
    let err = c.env("production").unwrap_err().to_string();
    assert!(err.contains("\"production\""), "{err}");
    assert!(err.contains("prod, staging"), "{err}");
}

#[test]
fn store_urls() {
    let base = Path::new("/p");
    assert_eq!(
        parse_store_url("file:///srv/x", base).unwrap(),
        StoreUrl::File("/srv/x".into())
    );
    assert_eq!(
        parse_store_url("file://rel", base).unwrap(),
        StoreUrl::File("/p/rel".into())
    );
    assert!(parse_store_url("s3://Bad_Bucket", base).is_err());
    assert!(parse_store_url("s3://ok-bucket/a/../b", base).is_err());
    assert!(parse_store_url("https://x", base).is_err());
}
