//! Driftless's cache policy (the release in the cache key) and response headers policy
//! (`[edge] headers` where they stay the environment's).

use super::{CloudFront, failed};
use crate::Error;

impl CloudFront {
    /// Driftless's cache policy `name`: the query-string parameter `param` (the release)
    /// in the cache key and nothing else of the request, compressed variants, TTLs taken
    /// from the objects' Cache-Control (a day when they set none, a year at most).
    /// Created if missing, put right if changed. Returns its id.
    pub async fn ensure_cache_policy(&self, name: &str, param: &str) -> Result<String, Error> {
        use aws_sdk_cloudfront::types::{
            CachePolicyConfig, CachePolicyCookieBehavior, CachePolicyCookiesConfig,
            CachePolicyHeaderBehavior, CachePolicyHeadersConfig, CachePolicyQueryStringBehavior,
            CachePolicyQueryStringsConfig, CachePolicyType,
            ParametersInCacheKeyAndForwardedToOrigin, QueryStringNames,
        };
        let e = |e: aws_sdk_cloudfront::error::BuildError| Error::Other(e.to_string());
        let config = CachePolicyConfig::builder()
            .name(name)
            .comment("driftless: the release in the cache key")
            .min_ttl(0)
            .default_ttl(86_400)
            .max_ttl(31_536_000)
            .parameters_in_cache_key_and_forwarded_to_origin(
                ParametersInCacheKeyAndForwardedToOrigin::builder()
                    .enable_accept_encoding_gzip(true)
                    .enable_accept_encoding_brotli(true)
                    .headers_config(
                        CachePolicyHeadersConfig::builder()
                            .header_behavior(CachePolicyHeaderBehavior::None)
                            .build()
                            .map_err(e)?,
                    )
                    .cookies_config(
                        CachePolicyCookiesConfig::builder()
                            .cookie_behavior(CachePolicyCookieBehavior::None)
                            .build()
                            .map_err(e)?,
                    )
                    .query_strings_config(
                        CachePolicyQueryStringsConfig::builder()
                            .query_string_behavior(CachePolicyQueryStringBehavior::Whitelist)
                            .query_strings(
                                QueryStringNames::builder()
                                    .quantity(1)
                                    .items(param)
                                    .build()
                                    .map_err(e)?,
                            )
                            .build()
                            .map_err(e)?,
                    )
                    .build()
                    .map_err(e)?,
            )
            .build()
            .map_err(e)?;
        let listed = self
            .client
            .list_cache_policies()
            .r#type(CachePolicyType::Custom)
            .send()
            .await
            .map_err(|e| failed("ListCachePolicies", &e))?;
        let found = listed
            .cache_policy_list()
            .map(|l| l.items())
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.cache_policy())
            .find(|p| p.cache_policy_config().is_some_and(|c| c.name() == name))
            .cloned();
        match found {
            Some(p) if p.cache_policy_config() == Some(&config) => Ok(p.id().to_owned()),
            Some(p) => {
                let got = self
                    .client
                    .get_cache_policy()
                    .id(p.id())
                    .send()
                    .await
                    .map_err(|e| failed("GetCachePolicy", &e))?;
                self.client
                    .update_cache_policy()
                    .id(p.id())
                    .if_match(got.e_tag().unwrap_or_default())
                    .cache_policy_config(config)
                    .send()
                    .await
                    .map_err(|e| failed("UpdateCachePolicy (If-Match)", &e))?;
                Ok(p.id().to_owned())
            }
            None => {
                let made = self
                    .client
                    .create_cache_policy()
                    .cache_policy_config(config)
                    .send()
                    .await
                    .map_err(|e| failed("CreateCachePolicy", &e))?;
                Ok(made
                    .cache_policy()
                    .map(|p| p.id().to_owned())
                    .unwrap_or_default())
            }
        }
    }

    /// The custom response headers policy named `name`: its id and ETag.
    pub async fn find_policy(&self, name: &str) -> Result<Option<(String, String)>, Error> {
        let client = &self.client;
        use aws_sdk_cloudfront::types::ResponseHeadersPolicyType;
        let list = client
            .list_response_headers_policies()
            .r#type(ResponseHeadersPolicyType::Custom)
            .send()
            .await
            .map_err(|e| failed("ListResponseHeadersPolicies", &e))?;
        let found = list
            .response_headers_policy_list()
            .and_then(|l| l.items.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|s| s.response_headers_policy.as_ref())
            .find(|p| {
                p.response_headers_policy_config
                    .as_ref()
                    .is_some_and(|c| c.name == name)
            })
            .map(|p| p.id.clone());
        let Some(id) = found else { return Ok(None) };
        let got = client
            .get_response_headers_policy_config()
            .id(&id)
            .send()
            .await
            .map_err(|e| failed("GetResponseHeadersPolicyConfig", &e))?;
        Ok(Some((id, got.e_tag().unwrap_or_default().to_owned())))
    }

    /// Create or update (If-Match) the policy; returns its id.
    pub async fn put_policy(&self, name: &str, p: &serde_json::Value) -> Result<String, Error> {
        let client = &self.client;
        let config = policy_config(name, p)?;
        match self.find_policy(name).await? {
            Some((id, etag)) => {
                client
                    .update_response_headers_policy()
                    .id(&id)
                    .if_match(etag)
                    .response_headers_policy_config(config)
                    .send()
                    .await
                    .map_err(|e| failed("UpdateResponseHeadersPolicy (If-Match)", &e))?;
                Ok(id)
            }
            None => {
                let made = client
                    .create_response_headers_policy()
                    .response_headers_policy_config(config)
                    .send()
                    .await
                    .map_err(|e| failed("CreateResponseHeadersPolicy", &e))?;
                Ok(made
                    .response_headers_policy()
                    .map(|p| p.id.clone())
                    .unwrap_or_default())
            }
        }
    }
}

/// The SDK's `ResponseHeadersPolicyConfig` from the API JSON of `[edge] headers`.
///
/// (`edge::cloudfront::headers_policy` makes that JSON.)
fn policy_config(
    name: &str,
    p: &serde_json::Value,
) -> Result<aws_sdk_cloudfront::types::ResponseHeadersPolicyConfig, Error> {
    use aws_sdk_cloudfront::types as t;
    let bad = |e: aws_sdk_cloudfront::error::BuildError| Error::Other(e.to_string());
    let mut b = t::ResponseHeadersPolicyConfig::builder()
        .name(name)
        .comment(p["Comment"].as_str().unwrap_or_default());
    if let Some(s) = p.get("SecurityHeadersConfig") {
        let mut sb = t::ResponseHeadersPolicySecurityHeadersConfig::builder();
        if let Some(h) = s.get("StrictTransportSecurity") {
            sb = sb.strict_transport_security(
                t::ResponseHeadersPolicyStrictTransportSecurity::builder()
                    .r#override(true)
                    .access_control_max_age_sec(
                        i32::try_from(h["AccessControlMaxAgeSec"].as_u64().unwrap_or(0))
                            .unwrap_or(i32::MAX),
                    )
                    .include_subdomains(h["IncludeSubdomains"].as_bool().unwrap_or(false))
                    .preload(h["Preload"].as_bool().unwrap_or(false))
                    .build()
                    .map_err(bad)?,
            );
        }
        if s.get("ContentTypeOptions").is_some() {
            sb = sb.content_type_options(
                t::ResponseHeadersPolicyContentTypeOptions::builder()
                    .r#override(true)
                    .build()
                    .map_err(bad)?,
            );
        }
        if let Some(h) = s.get("FrameOptions") {
            sb = sb.frame_options(
                t::ResponseHeadersPolicyFrameOptions::builder()
                    .r#override(true)
                    .frame_option(t::FrameOptionsList::from(
                        h["FrameOption"].as_str().unwrap_or("DENY"),
                    ))
                    .build()
                    .map_err(bad)?,
            );
        }
        if let Some(h) = s.get("ReferrerPolicy") {
            sb = sb.referrer_policy(
                t::ResponseHeadersPolicyReferrerPolicy::builder()
                    .r#override(true)
                    .referrer_policy(t::ReferrerPolicyList::from(
                        h["ReferrerPolicy"].as_str().unwrap_or("no-referrer"),
                    ))
                    .build()
                    .map_err(bad)?,
            );
        }
        if let Some(h) = s.get("ContentSecurityPolicy") {
            sb = sb.content_security_policy(
                t::ResponseHeadersPolicyContentSecurityPolicy::builder()
                    .r#override(true)
                    .content_security_policy(
                        h["ContentSecurityPolicy"].as_str().unwrap_or_default(),
                    )
                    .build()
                    .map_err(bad)?,
            );
        }
        if let Some(h) = s.get("XSSProtection") {
            let mut xb = t::ResponseHeadersPolicyXssProtection::builder()
                .r#override(true)
                .protection(h["Protection"].as_bool().unwrap_or(false))
                .mode_block(h["ModeBlock"].as_bool().unwrap_or(false));
            if let Some(u) = h["ReportUri"].as_str() {
                xb = xb.report_uri(u);
            }
            sb = sb.xss_protection(xb.build().map_err(bad)?);
        }
        b = b.security_headers_config(sb.build());
    }
    if let Some(items) = p["CustomHeadersConfig"]["Items"].as_array() {
        let mut cb = t::ResponseHeadersPolicyCustomHeadersConfig::builder()
            .quantity(i32::try_from(items.len()).unwrap_or(i32::MAX));
        for i in items {
            cb = cb.items(
                t::ResponseHeadersPolicyCustomHeader::builder()
                    .header(i["Header"].as_str().unwrap_or_default())
                    .value(i["Value"].as_str().unwrap_or_default())
                    .r#override(true)
                    .build()
                    .map_err(bad)?,
            );
        }
        b = b.custom_headers_config(cb.build().map_err(bad)?);
    }
    b.build().map_err(bad)
}
