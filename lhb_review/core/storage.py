"""Where asset files live: a local directory by default, or an S3-compatible bucket (Cloudflare R2).

Both backends speak in asset keys (``orders/<order_id>/<stage>/<file>``, as stored in ``r2_assets``);
the key is checked once here, so no caller can reach outside the store.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from flask import Flask, current_app

MAX_KEY = 500  # orders.asset_prefix and the keys under it fit in the seed's String(500)
KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/=+@,~]*$")


class StorageError(RuntimeError):
    """The store could not do what was asked (missing object, no credentials, backend down)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class InvalidKey(ValueError):
    """A key that could escape the store or is not one this app writes."""


def check_key(key: str) -> str:
    """The key itself when it is a plain relative path of safe characters; InvalidKey otherwise."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY or not KEY_RE.fullmatch(key):
        raise InvalidKey(f"Not a valid asset key: {key!r}")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidKey(f"Not a valid asset key: {key!r}")
    return key


class Storage(Protocol):
    name: str

    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def url(self, key: str) -> str | None:
        """A URL browsers can fetch the object from directly, or None when the app serves it itself."""
    def check(self) -> None:
        """Raise StorageError unless the store answers and this app may use it (readiness, flask health)."""


class LocalStorage:
    """Files under one directory (ASSET_DIR); served by the app at /assets/<key>."""

    name = "local"

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()

    def path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise InvalidKey(f"Not a valid asset key: {key!r}")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write atomically: readers see the old file or the whole new one, never half of it."""
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        except OSError as exc:
            raise StorageError(f"Cannot write {key} under {self.root}: {exc.strerror or exc}") from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise StorageError(f"Cannot write {key} under {self.root}: {exc.strerror or exc}") from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise StorageError(f"No asset stored at {key}") from None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def url(self, key: str) -> str | None:
        check_key(key)
        return None

    def check(self) -> None:
        if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f"The asset directory {self.root} is missing or not writable")


class S3Storage:
    """An S3-compatible bucket (Cloudflare R2, MinIO, AWS). boto3 is imported on first use only
    (``pip install 'lhb-review[s3]'``), so the local backend needs no AWS libraries.

    Browsers get a public URL when S3_PUBLIC_URL is set (an R2 custom domain), else a presigned GET
    valid for ``url_expires`` seconds; objects are addressed path-style, as R2 expects.
    """

    name = "s3"

    def __init__(
        self,
        *,
        endpoint_url: str,
        bucket: str,
        access_key_id: str,
        secret_access_key: str,
        region: str = "auto",
        prefix: str = "",
        public_url: str | None = None,
        url_expires: int = 300,
        client: Any = None,
    ):
        self.endpoint_url = endpoint_url.rstrip("/")
        self.bucket = bucket
        self.region = region
        self.prefix = prefix.strip("/")
        self.public_url = public_url.rstrip("/") if public_url else None
        self.url_expires = url_expires
        self._credentials = (access_key_id, secret_access_key)
        self._client = client

    @property
    def client(self):
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise StorageError(
                    "STORAGE_BACKEND=s3 needs boto3: install it with pip install 'lhb-review[s3]'"
                ) from None
            access_key_id, secret_access_key = self._credentials
            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint_url,
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                region_name=self.region,
                config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                              retries={"max_attempts": 3, "mode": "standard"}),
            )
        return self._client

    def object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self._call("put_object", Bucket=self.bucket, Key=self.object_key(key), Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        return self._call("get_object", Bucket=self.bucket, Key=self.object_key(key))["Body"].read()

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", Bucket=self.bucket, Key=self.object_key(key))
        except StorageError as exc:
            if getattr(exc, "status", None) == 404:
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self._call("delete_object", Bucket=self.bucket, Key=self.object_key(key))

    def url(self, key: str) -> str | None:
        object_key = self.object_key(key)
        if self.public_url:
            return f"{self.public_url}/{quote(object_key)}"
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": object_key}, ExpiresIn=self.url_expires
        )

    def check(self) -> None:
        """The bucket exists and the credentials may use it (HEAD bucket: no object is read)."""
        self._call("head_bucket", Bucket=self.bucket)

    def _call(self, operation: str, **params):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(**params)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = exc.response.get("Error", {}).get("Code", "")
            what = f"{operation} of {params['Key']}" if "Key" in params else f"{operation} of bucket {self.bucket}"
            if status == 403 or code in CREDENTIAL_ERRORS:
                raise StorageError(
                    f"Object store refused the credentials for {what} ({code or status}): check "
                    "S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, and that the key may use bucket "
                    f"{self.bucket}", status or 403,
                ) from exc
            raise StorageError(f"Object store refused {what}: {exc}", status) from exc
        except BotoCoreError as exc:
            what = params.get("Key") or f"bucket {self.bucket}"
            raise StorageError(f"Object store unreachable for {operation} of {what}: {exc}") from exc


CREDENTIAL_ERRORS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken",
                     "ExpiredToken", "AuthorizationHeaderMalformed"}


def from_config(config: dict) -> Storage:
    if config.get("STORAGE_BACKEND", "local") == "s3":
        return S3Storage(
            endpoint_url=config["S3_ENDPOINT_URL"],
            bucket=config["S3_BUCKET"],
            access_key_id=config["S3_ACCESS_KEY_ID"],
            secret_access_key=config["S3_SECRET_ACCESS_KEY"],
            region=config.get("S3_REGION") or "auto",
            prefix=config.get("S3_PREFIX") or "",
            public_url=config.get("S3_PUBLIC_URL"),
        )
    return LocalStorage(config["ASSET_DIR"])


def init_app(app: Flask) -> None:
    app.extensions["lhb_storage"] = from_config(app.config)


def get_storage() -> Storage:
    """The app's store (made from its config on first use)."""
    storage = current_app.extensions.get("lhb_storage")
    if storage is None:
        storage = current_app.extensions["lhb_storage"] = from_config(current_app.config)
    return storage
