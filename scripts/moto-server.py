"""moto_server (moto[server] 5.2.5, pinned in s3-test-servers.sh) with the two CloudFront
Functions calls it lacks, so `driftless edge --apply` can run end to end in the tests:

- UpdateFunction: new code and config, checked against If-Match (the function's ETag);
- PublishFunction: copies the DEVELOPMENT code to LIVE, checked against If-Match;
- GetFunction with Stage=LIVE answers the published code (NoSuchFunctionExists before);
- UpdateDistribution keeps the default cache behavior's FunctionAssociations (moto
  accepts them and drops them);
- GetBucketVersioning answers with S3's root element, VersioningConfiguration (moto
  writes GetBucketVersioningResponse, which botocore tolerates and the Rust SDK does not).

Everything else is moto's own. Still missing (driftless's tests say so): TestFunction and
the response headers policy calls. moto does not compare UpdateDistribution's If-Match.
"""

import sys

from moto.cloudfront import models, urls
from moto.cloudfront.exceptions import CloudFrontException, NoSuchFunctionExists
from moto.cloudfront.models import random_id
from moto.cloudfront.responses import CloudFrontResponse
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.s3.responses import S3Response


class PreconditionFailed(CloudFrontException):
    code = 412

    def __init__(self) -> None:
        super().__init__(
            "PreconditionFailed",
            "The If-Match version does not match the resource's current ETag.",
        )


def _checked(self):
    function = self.backend.describe_function(self._get_param("Name"))
    if self._get_param("IfMatch") != function.etag:
        raise PreconditionFailed()
    return function


def update_function(self):
    function = _checked(self)
    function.code = self._get_param("FunctionCode")
    function.config = self._get_param("FunctionConfig", function.config)
    function.stage = "DEVELOPMENT"
    function.status = "UNPUBLISHED"
    function.last_modified_time = utcnow()
    function.etag = random_id()
    return ActionResult({"FunctionSummary": function.function_summary, "ETag": function.etag})


def publish_function(self):
    function = _checked(self)
    function.live_code = function.code
    function.stage = "LIVE"
    function.status = "UNASSOCIATED"
    function.last_modified_time = utcnow()
    return ActionResult({"FunctionSummary": function.function_summary})


_get_function = CloudFrontResponse.get_function


def get_function(self):
    if self._get_param("Stage") != "LIVE":
        return _get_function(self)
    name = self._get_param("Name")
    function = self.backend.describe_function(name)
    code = getattr(function, "live_code", None)
    if code is None:
        raise NoSuchFunctionExists(name)
    return ActionResult(
        {"FunctionCode": code, "ETag": function.etag, "ContentType": "application/octet-stream"}
    )


_cache_behaviour_init = models.DefaultCacheBehaviour.__init__


def cache_behaviour_init(self, config):
    _cache_behaviour_init(self, config)
    self.function_associations = config.get("FunctionAssociations") or {"Quantity": 0}


models.DefaultCacheBehaviour.__init__ = cache_behaviour_init
_get_bucket_versioning = S3Response.get_bucket_versioning


def get_bucket_versioning(self):
    status, headers, body = _get_bucket_versioning(self)
    if isinstance(body, bytes):
        body = body.decode()
    return status, headers, body.replace("GetBucketVersioningResponse", "VersioningConfiguration")


S3Response.get_bucket_versioning = get_bucket_versioning
CloudFrontResponse.update_function = update_function
CloudFrontResponse.publish_function = publish_function
CloudFrontResponse.get_function = get_function
urls.url_paths["{0}/2020-05-31/function/(?P<function_name>[^/]+)/publish$"] = (
    CloudFrontResponse.dispatch
)

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
