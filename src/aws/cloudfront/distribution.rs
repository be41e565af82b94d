//! A distribution's config, and the edits `edge --apply` makes to it: the functions,
//! the headers policy, the custom error responses and the release in the cache key on
//! the default cache behavior (another tool's function is never replaced).

use aws_sdk_cloudfront::types::{
    CustomErrorResponse, CustomErrorResponses, DistributionConfig, EventType, FunctionAssociation,
    FunctionAssociations,
};

use super::{CloudFront, failed};
use crate::Error;

/// A distribution's config as read, with the ETag its update is conditional on.
pub struct Distribution {
    pub etag: String,
    pub(super) config: DistributionConfig,
}

impl Distribution {
    /// The response headers policy on the default cache behavior, if any.
    pub fn headers_policy_id(&self) -> Option<&str> {
        self.config
            .default_cache_behavior
            .as_ref()?
            .response_headers_policy_id
            .as_deref()
            .filter(|id| !id.is_empty())
    }

    /// This config without response headers policy `id` on the default cache behavior
    /// (driftless's own, once headers come with each release); `None` when it has none.
    pub fn without_policy(&self, id: &str) -> Option<Distribution> {
        let mut config = self.config.clone();
        let dcb = config.default_cache_behavior.as_mut()?;
        if dcb.response_headers_policy_id.as_deref() != Some(id) {
            return None;
        }
        dcb.response_headers_policy_id = None;
        Some(Distribution {
            etag: self.etag.clone(),
            config,
        })
    }

    /// This config with the edge function `arn` (named `function`), the headers policy and
    /// the custom error responses (CloudFront API JSON) attached to the default cache
    /// behavior; `None` when it has them already. Refuses to replace another
    /// viewer-request function.
    pub fn with_edge(
        &self,
        arn: &str,
        policy_id: Option<&str>,
        function: &str,
        errors: &[serde_json::Value],
        release_key: Option<(&str, &str)>,
        response_arn: Option<&str>,
    ) -> Result<Option<Distribution>, Error> {
        Ok(attached(
            self.config.clone(),
            arn,
            policy_id,
            function,
            errors,
            release_key,
            response_arn,
        )?
        .map(|config| Distribution {
            etag: self.etag.clone(),
            config,
        }))
    }
}

impl Distribution {
    /// Whether the default cache behavior's cache key includes the query-string
    /// parameter `param`: through driftless's cache policy `policy` (its config read),
    /// or the legacy settings' cache keys.
    #[allow(deprecated)]
    pub async fn release_in_cache_key(
        &self,
        cf: &CloudFront,
        policy: &str,
        param: &str,
    ) -> Result<bool, Error> {
        let Some(dcb) = self.config.default_cache_behavior.as_ref() else {
            return Ok(false);
        };
        match dcb.cache_policy_id.as_deref().filter(|id| !id.is_empty()) {
            Some(id) => {
                let got = cf
                    .client
                    .get_cache_policy()
                    .id(id)
                    .send()
                    .await
                    .map_err(|e| failed("GetCachePolicy", &e))?;
                let config = got.cache_policy().and_then(|p| p.cache_policy_config());
                Ok(config.is_some_and(|c| {
                    c.name() == policy
                        && c.parameters_in_cache_key_and_forwarded_to_origin()
                            .and_then(|p| p.query_strings_config())
                            .and_then(|q| q.query_strings())
                            .is_some_and(|q| q.items().iter().any(|i| i == param))
                }))
            }
            None => Ok(dcb.forwarded_values.as_ref().is_some_and(|fv| {
                fv.query_string
                    && fv
                        .query_string_cache_keys
                        .as_ref()
                        .and_then(|k| k.items.as_ref())
                        .is_some_and(|i| i.iter().any(|i| i == param))
            })),
        }
    }

    /// Whether the default cache behavior takes its cache key from a cache policy (the
    /// modern settings) rather than legacy `ForwardedValues`.
    pub fn uses_cache_policy(&self) -> bool {
        self.config
            .default_cache_behavior
            .as_ref()
            .and_then(|d| d.cache_policy_id.as_deref())
            .is_some_and(|id| !id.is_empty())
    }
}

/// The distribution config with the function, policy and error responses of `c`
/// attached; `None` when it already has them. Refuses to replace another viewer-request
/// function.
/// The release parameter in the cache key of a behavior on the legacy cache settings
/// (`ForwardedValues`: deprecated in the API, still on many distributions).
#[allow(deprecated)]
fn legacy_release_key(
    dcb: &mut aws_sdk_cloudfront::types::DefaultCacheBehavior,
    param: &str,
) -> Result<(), Error> {
    use aws_sdk_cloudfront::types::{
        CookiePreference, ForwardedValues, ItemSelection, QueryStringCacheKeys,
    };
    let e = |e: aws_sdk_cloudfront::error::BuildError| Error::Other(e.to_string());
    let mut fv = match dcb.forwarded_values.clone() {
        Some(fv) => fv,
        None => ForwardedValues::builder()
            .cookies(
                CookiePreference::builder()
                    .forward(ItemSelection::None)
                    .build()
                    .map_err(e)?,
            )
            .query_string(true)
            .build()
            .map_err(e)?,
    };
    fv.query_string = true;
    fv.query_string_cache_keys = Some(
        QueryStringCacheKeys::builder()
            .quantity(1)
            .items(param)
            .build()
            .map_err(e)?,
    );
    dcb.forwarded_values = Some(fv);
    Ok(())
}

/// Make `items` run `arn` on `event` in place of ours (a function ARN ending in
/// `ours`), or (`None`) drop ours; someone else's function there is refused.
fn attach(
    items: &mut Vec<FunctionAssociation>,
    event: EventType,
    arn: Option<&str>,
    ours: &str,
    alternative: &str,
) -> Result<(), Error> {
    let Some(arn) = arn else {
        items.retain(|a| !(a.event_type == event && a.function_arn.ends_with(ours)));
        return Ok(());
    };
    if let Some(other) = items
        .iter()
        .find(|a| a.event_type == event && !a.function_arn.ends_with(ours))
    {
        return Err(Error::Refused(format!(
            "the distribution's default cache behavior runs another {} function ({}); driftless will not replace it\n  → detach it ({alternative}) and run `driftless edge ENV --apply` again",
            event.as_str(),
            other.function_arn
        )));
    }
    items.retain(|a| a.event_type != event);
    items.push(
        FunctionAssociation::builder()
            .function_arn(arn)
            .event_type(event)
            .build()
            .map_err(|e| Error::Other(e.to_string()))?,
    );
    Ok(())
}

fn attached(
    mut cfg: DistributionConfig,
    arn: &str,
    policy_id: Option<&str>,
    function: &str,
    errors: &[serde_json::Value],
    release_key: Option<(&str, &str)>,
    response_arn: Option<&str>,
) -> Result<Option<DistributionConfig>, Error> {
    let before = cfg.clone();
    let dcb = cfg
        .default_cache_behavior
        .as_mut()
        .ok_or_else(|| Error::Other("the distribution has no default cache behavior".into()))?;
    let mut items: Vec<FunctionAssociation> = dcb
        .function_associations
        .as_ref()
        .and_then(|f| f.items.clone())
        .unwrap_or_default();
    attach(
        &mut items,
        EventType::ViewerRequest,
        Some(arn),
        &format!("/{function}"),
        "or fold its logic into [edge]",
    )?;
    // The viewer-response function of the atomic layout (the canary cookie, noindex on
    // previews): attached with it, detached (only ours) in place.
    attach(
        &mut items,
        EventType::ViewerResponse,
        response_arn,
        &format!("/{function}-response"),
        "its headers can go in [edge] headers",
    )?;
    dcb.function_associations = Some(
        FunctionAssociations::builder()
            .quantity(i32::try_from(items.len()).unwrap_or(i32::MAX))
            .set_items(Some(items))
            .build()
            .map_err(|e| Error::Other(e.to_string()))?,
    );
    if let Some(id) = policy_id {
        dcb.response_headers_policy_id = Some(id.to_owned());
    }
    // The atomic layout's function puts the release in the query string: it must be in
    // the cache key (driftless's cache policy, or the legacy settings' cache keys).
    if let Some((policy, param)) = release_key {
        if dcb
            .cache_policy_id
            .as_deref()
            .is_some_and(|id| !id.is_empty())
        {
            dcb.cache_policy_id = Some(policy.to_owned());
        } else {
            legacy_release_key(dcb, param)?;
        }
    }
    if !errors.is_empty() {
        let mut errs: Vec<CustomErrorResponse> = cfg
            .custom_error_responses
            .as_ref()
            .and_then(|e| e.items.clone())
            .unwrap_or_default();
        errs.retain(|e| e.error_code != 403 && e.error_code != 404);
        for e in errors {
            errs.push(
                CustomErrorResponse::builder()
                    .error_code(
                        e["ErrorCode"]
                            .as_i64()
                            .and_then(|n| i32::try_from(n).ok())
                            .unwrap_or(404),
                    )
                    .response_page_path(e["ResponsePagePath"].as_str().unwrap_or_default())
                    .response_code(e["ResponseCode"].as_str().unwrap_or("404"))
                    .error_caching_min_ttl(e["ErrorCachingMinTTL"].as_i64().unwrap_or(10))
                    .build()
                    .map_err(|e| Error::Other(e.to_string()))?,
            );
        }
        errs.sort_by_key(|e| e.error_code);
        cfg.custom_error_responses = Some(
            CustomErrorResponses::builder()
                .quantity(i32::try_from(errs.len()).unwrap_or(i32::MAX))
                .set_items(Some(errs))
                .build()
                .map_err(|e| Error::Other(e.to_string()))?,
        );
    }
    Ok((cfg != before).then_some(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudfront::types::{DefaultCacheBehavior, ViewerProtocolPolicy};

    fn config(cache_policy: Option<&str>) -> DistributionConfig {
        let mut dcb = DefaultCacheBehavior::builder()
            .target_origin_id("s3")
            .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps);
        if let Some(id) = cache_policy {
            dcb = dcb.cache_policy_id(id);
        }
        DistributionConfig::builder()
            .caller_reference("r")
            .comment("")
            .enabled(true)
            .default_cache_behavior(dcb.build().unwrap())
            .build()
            .unwrap()
    }

    /// The release parameter reaches the cache key whichever settings the behavior has:
    /// driftless's cache policy replaces the one it used (a managed policy such as
    /// CachingOptimized keeps no query string), legacy settings get it as a cache key.
    #[test]
    #[allow(deprecated)]
    fn the_release_joins_the_cache_key() {
        let arn = "arn:aws:cloudfront::1:function/driftless-prod";
        let modern = attached(
            config(Some("658327ea-f89d-4fab-a63d-7e88639e58f6")),
            arn,
            None,
            "driftless-prod",
            &[],
            Some(("our-policy", "driftless-release")),
            None,
        )
        .unwrap()
        .unwrap();
        let dcb = modern.default_cache_behavior.unwrap();
        assert_eq!(dcb.cache_policy_id.as_deref(), Some("our-policy"));
        assert!(dcb.forwarded_values.is_none());

        let legacy = attached(
            config(None),
            arn,
            None,
            "driftless-prod",
            &[],
            Some(("", "driftless-release")),
            None,
        )
        .unwrap()
        .unwrap();
        let fv = legacy
            .default_cache_behavior
            .unwrap()
            .forwarded_values
            .unwrap();
        assert!(fv.query_string);
        assert_eq!(
            fv.query_string_cache_keys.unwrap().items.unwrap(),
            ["driftless-release"]
        );

        // In place: the cache key is left alone.
        let in_place = attached(config(None), arn, None, "driftless-prod", &[], None, None)
            .unwrap()
            .unwrap();
        assert!(
            in_place
                .default_cache_behavior
                .unwrap()
                .forwarded_values
                .is_none()
        );
    }

    /// Previews bring the viewer-response function; without them only ours is detached,
    /// and another one is never replaced.
    #[test]
    fn the_preview_response_function_is_attached_and_detached_alone() {
        let arn = "arn:aws:cloudfront::1:function/driftless-prod";
        let response = "arn:aws:cloudfront::1:function/driftless-prod-response";
        let with = attached(
            config(None),
            arn,
            None,
            "driftless-prod",
            &[],
            None,
            Some(response),
        )
        .unwrap()
        .unwrap();
        let events = |c: &DistributionConfig| -> Vec<(EventType, String)> {
            c.default_cache_behavior
                .as_ref()
                .and_then(|d| d.function_associations.as_ref())
                .and_then(|f| f.items.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|a| (a.event_type, a.function_arn))
                .collect()
        };
        assert_eq!(
            events(&with),
            [
                (EventType::ViewerRequest, arn.to_owned()),
                (EventType::ViewerResponse, response.to_owned())
            ]
        );
        let without = attached(with, arn, None, "driftless-prod", &[], None, None)
            .unwrap()
            .unwrap();
        assert_eq!(
            events(&without),
            [(EventType::ViewerRequest, arn.to_owned())]
        );
        let mut foreign = config(None);
        foreign
            .default_cache_behavior
            .as_mut()
            .unwrap()
            .function_associations = Some(
            FunctionAssociations::builder()
                .quantity(1)
                .items(
                    FunctionAssociation::builder()
                        .function_arn("arn:aws:cloudfront::1:function/someone-elses")
                        .event_type(EventType::ViewerResponse)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        );
        let refused = attached(
            foreign,
            arn,
            None,
            "driftless-prod",
            &[],
            None,
            Some(response),
        );
        assert!(matches!(refused, Err(Error::Refused(_))), "{refused:?}");
    }
}
