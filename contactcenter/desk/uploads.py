"""Files an agent attaches to a reply. Providers fetch media from a public URL, so each file
is stored under an unguessable token (128 random bits) and served without sign-in at
`/desk/attachments/<token>/<name>`; nothing lists them."""

import re
import secrets
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import FileResponse, Http404, HttpRequest
from django.urls import reverse

from routing.errors import RoutingError

MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024  # WhatsApp's and MMS's common limit for images
ALLOWED_TYPES = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "video/mp4": ".mp4",
    "text/plain": ".txt",
}
TOKEN = re.compile(r"^[0-9a-f]{32}$")
NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _root() -> Path:
    return Path(settings.MEDIA_ROOT) / "desk-attachments"


def _safe_name(name: str, content_type: str) -> str:
    stem = NAME.sub("-", Path(name or "file").stem).strip("-.")[:60] or "file"
    return stem + ALLOWED_TYPES[content_type]


def attachment_store(upload: UploadedFile, *, request: HttpRequest) -> str:
    """Store the file; the absolute URL providers will fetch it from."""
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if content_type not in ALLOWED_TYPES:
        allowed = ", ".join(sorted(ALLOWED_TYPES))
        raise RoutingError(
            20001,
            f"Files of type {content_type or 'unknown'} can't be sent; send {allowed}.",
            "file",
        )
    if upload.size > MAX_ATTACHMENT_BYTES:
        raise RoutingError(20001, "Attachments are at most 5 MB.", "file")
    token = secrets.token_hex(16)
    name = _safe_name(upload.name, content_type)
    folder = _root() / token
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "wb") as target:
        for chunk in upload.chunks():
            target.write(chunk)
    path = reverse("desk:attachment", args=[token, name])
    base = settings.PUBLIC_BASE_URL or request.build_absolute_uri("/").rstrip("/")
    return base + path


def attachment_response(token: str, name: str) -> FileResponse:
    if not TOKEN.match(token) or NAME.search(name) or name.startswith("."):
        raise Http404("No such attachment.")
    path = _root() / token / name
    if not path.is_file():
        raise Http404("No such attachment.")
    suffix = path.suffix.lower()
    content_type = next(
        (t for t, s in ALLOWED_TYPES.items() if s == suffix), "application/octet-stream"
    )
    return FileResponse(open(path, "rb"), content_type=content_type)
