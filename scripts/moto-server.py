"""moto_server (moto[server] 5.2.5, pinned in s3-test-servers.sh) with the two CloudFront
Functions calls it lacks, so `driftless edge --apply` can run end to end in the tests:

- UpdateFunction: new code and config, checked against If-Match (the function's ETag);
- PublishFunction: copies the DEVELOPMENT code to LIVE, checked against If-Match;
- GetFunction with Stage=LIVE answers the published code (NoSuchFunctionExists before);
- UpdateDistribution keeps the default cache behavior's FunctionAssociations (moto
  accepts them and drops them);
- GetBucketVersioning answers with S3's root element, VersioningConfiguration (moto
  writes GetBucketVersioningResponse, which botocore tolerates and the Rust SDK does not).

- the CloudFront KeyValueStore data plane (moto has only the control plane): under
  `/key-value-stores/{ARN}`, DescribeKeyValueStore, GetKey, ListKeys, PutKey, DeleteKey
  and UpdateKeys, every write checked against If-Match (the store-wide ETag; a stale one
  answers 412) and answering the new ETag, with the service's limits (key 512 bytes,
  value 1 KB, store 5 MB, 50 keys per UpdateKeys).

Everything else is moto's own. Still missing (driftless's tests say so): TestFunction and
the response headers policy calls. moto does not compare UpdateDistribution's If-Match.
"""

import json
import sys
from urllib.parse import parse_qs, unquote

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

# --- KeyValueStore data plane -------------------------------------------------------


def _kvs_answer(start_response, status, body, etag=None):
    data = json.dumps(body).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    if etag is not None:
        headers.append(("ETag", etag))
    reasons = {200: "OK", 400: "Bad Request", 404: "Not Found", 412: "Precondition Failed"}
    start_response(f"{status} {reasons.get(status, 'Error')}", headers)
    return [data]


def _kvs_error(start_response, status, code, message):
    body = {"__type": code, "Message": message, "message": message}
    data = json.dumps(body).encode()
    start_response(
        f"{status} Error",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("x-amzn-ErrorType", code),
        ],
    )
    return [data]


def _kvs_store(arn):
    """The moto KeyValueStore named by `arn`, with its data-plane items and ETag."""
    from moto.cloudfront.models import cloudfront_backends

    for account in list(cloudfront_backends.keys()):
        for store in cloudfront_backends[account]["global"].key_value_stores.values():
            if store.arn == arn:
                if not hasattr(store, "items"):
                    store.items = {}
                    store.data_etag = "KV" + random_id()
                return store
    return None


def _kvs_size(store):
    return sum(len(k.encode()) + len(v.encode()) for k, v in store.items.items())


def _kvs_counts(store):
    return {"ItemCount": len(store.items), "TotalSizeInBytes": _kvs_size(store)}


def _kvs_apply(store, puts, deletes):
    """Check and apply a batch; returns an error tuple or None."""
    items = dict(store.items)
    for key in deletes:
        items.pop(key, None)
    for key, value in puts:
        if not 1 <= len(key.encode()) <= 512:
            return 400, "ValidationException", f"key {key!r} is longer than 512 bytes"
        if len(value.encode()) > 1024:
            return 400, "ValidationException", f"the value of {key!r} is over 1 KB"
        items[key] = value
    if sum(len(k.encode()) + len(v.encode()) for k, v in items.items()) > 5 * 1024 * 1024:
        return 402, "ServiceQuotaExceededException", "the store would exceed 5 MB"
    store.items = items
    store.data_etag = "KV" + random_id()
    return None


def kvs_data_plane(environ, start_response):
    path = environ.get("PATH_INFO", "")
    rest = path[len("/key-value-stores/") :]
    arn, _, tail = rest.partition("/keys")
    arn = unquote(arn.rstrip("/"))
    store = _kvs_store(arn)
    if store is None:
        return _kvs_error(start_response, 404, "ResourceNotFoundException", f"no store {arn}")
    method = environ["REQUEST_METHOD"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
    if_match = environ.get("HTTP_IF_MATCH")
    key = unquote(tail[1:]) if tail.startswith("/") else None
    if not tail and "/keys" not in rest:
        if method == "GET":  # DescribeKeyValueStore
            created = store.last_modified_time.timestamp()
            return _kvs_answer(
                start_response,
                200,
                dict(_kvs_counts(store), KvsARN=store.arn, Created=created, Status="READY"),
                etag=store.data_etag,
            )
        return _kvs_error(start_response, 400, "ValidationException", "bad method")
    if method == "GET" and key is None:  # ListKeys
        query = parse_qs(environ.get("QUERY_STRING", ""))
        keys = sorted(store.items)
        start = int(query.get("NextToken", ["0"])[0])
        limit = int(query.get("MaxResults", ["50"])[0])
        page = keys[start : start + limit]
        out = {"Items": [{"Key": k, "Value": store.items[k]} for k in page]}
        if start + limit < len(keys):
            out["NextToken"] = str(start + limit)
        return _kvs_answer(start_response, 200, out)
    if method == "GET":  # GetKey
        if key not in store.items:
            return _kvs_error(start_response, 404, "ResourceNotFoundException", f"no key {key}")
        out = dict(_kvs_counts(store), Key=key, Value=store.items[key])
        return _kvs_answer(start_response, 200, out)
    if if_match != store.data_etag:
        return _kvs_error(
            start_response,
            412,
            "PreconditionFailed",
            f"If-Match {if_match} is not the store's ETag {store.data_etag}",
        )
    if method == "PUT" and key is not None:  # PutKey
        failed = _kvs_apply(store, [(key, body.get("Value", ""))], [])
    elif method == "DELETE" and key is not None:  # DeleteKey
        if key not in store.items:
            return _kvs_error(start_response, 404, "ResourceNotFoundException", f"no key {key}")
        failed = _kvs_apply(store, [], [key])
    elif method == "POST" and key is None:  # UpdateKeys
        puts = [(p["Key"], p["Value"]) for p in body.get("Puts") or []]
        deletes = [d["Key"] for d in body.get("Deletes") or []]
        if len(puts) + len(deletes) > 50:
            return _kvs_error(start_response, 400, "ValidationException", "over 50 keys")
        failed = _kvs_apply(store, puts, deletes)
    else:
        return _kvs_error(start_response, 400, "ValidationException", "bad method")
    if failed:
        return _kvs_error(start_response, *failed)
    return _kvs_answer(start_response, 200, _kvs_counts(store), etag=store.data_etag)


def _with_kvs(app_call):
    def call(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/key-value-stores/"):
            return kvs_data_plane(environ, start_response)
        return app_call(self, environ, start_response)

    return call


from moto.moto_server.werkzeug_app import DomainDispatcherApplication  # noqa: E402

DomainDispatcherApplication.__call__ = _with_kvs(DomainDispatcherApplication.__call__)

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
