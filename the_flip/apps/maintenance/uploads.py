"""What we accept from a phone, decided before anything is stored.

The size cap is enforced while the body streams in (CappedUploadHandler), so a 2 GB upload
costs neither memory nor disk. The type check is a whitelist of extensions, cross-checked
against the MIME type the browser sent. Photos are then verified by actually decoding them
(photos.py); videos by ffprobe in the worker. attachments.py runs these checks for every
upload path.
"""

from pathlib import PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict

# The formats we accept, by the name a maintainer knows them by, with their extensions.
PHOTO_FORMATS = {
    "JPEG": {".jpg", ".jpeg"}, "PNG": {".png"}, "WebP": {".webp"}, "HEIC": {".heic", ".heif"},
}  # fmt: skip
VIDEO_FORMATS = {
    "MOV": {".mov"}, "MP4": {".mp4"}, "M4V": {".m4v"}, "3GP": {".3gp"}, "WebM": {".webm"},
    "MKV": {".mkv"}, "AVI": {".avi"},
}  # fmt: skip
PHOTO_EXTENSIONS = set().union(*PHOTO_FORMATS.values())
VIDEO_EXTENSIONS = set().union(*VIDEO_FORMATS.values())
PHOTO_MIME_TYPES = {
    "image/jpeg", "image/pjpeg", "image/png", "image/webp",
    "image/heic", "image/heif", "image/heic-sequence", "image/heif-sequence",
}  # fmt: skip
VIDEO_MIME_TYPES = {
    "video/quicktime", "video/mp4", "video/x-m4v", "video/3gpp", "video/3gpp2", "video/webm",
    "video/x-matroska", "video/matroska", "video/avi", "video/x-msvideo", "video/msvideo",
    "audio/webm",  # some browsers label a WebM by its audio track
}  # fmt: skip
# Phones and browsers send these when they do not know; the extension decides then.
UNKNOWN_MIME_TYPES = {"", "application/octet-stream", "binary/octet-stream"}

# How many files one request may carry, so the streaming cap for a whole request is known.
MAX_FILES_PER_REQUEST = 10
# Room in a request for the multipart framing and the text fields around its files.
MULTIPART_OVERHEAD_BYTES = 1024 * 1024
# The file picker's filter; the real check is classify().
ACCEPT = "image/*,video/*"


class UploadRejected(Exception):
    """An upload we refuse; str() is a sentence for the maintainer, status the HTTP code."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def max_upload_mb() -> int:
    return settings.MAX_UPLOAD_BYTES // (1024 * 1024)


def request_cap(max_files: int) -> int:
    """The largest request body a view taking ``max_files`` uploads lets in."""
    return settings.MAX_UPLOAD_BYTES * max_files + MULTIPART_OVERHEAD_BYTES


def too_large_message(name: str = "") -> str:
    what = f"“{name}”" if name else "This file"
    return f"{what} is larger than {max_upload_mb()} MB, the most we accept for one file."


def empty_message(name: str) -> str:
    return f"“{name}” is empty (0 bytes). Try attaching it again."


def not_accepted_message(name: str) -> str:
    return (
        f"“{name}” is not a photo or video we accept. Photos: {', '.join(PHOTO_FORMATS)}. "
        f"Videos: {', '.join(VIDEO_FORMATS)}."
    )


def too_many_files_message() -> str:
    return f"Attach at most {MAX_FILES_PER_REQUEST} files at once."


def check_file_count(uploads: list) -> None:
    """One request carries at most MAX_FILES_PER_REQUEST files: more is refused, not cut."""
    if len(uploads) > MAX_FILES_PER_REQUEST:
        raise UploadRejected(too_many_files_message())


def upload_rules() -> dict:
    """What the page checks before it sends a file, from the same lists and caps classify()
    applies (uploader.js reads it from the file input's ``data-upload-rules``). Sentences
    carry ``{name}`` where the file's name goes."""
    return {
        "extensions": sorted(ext.lstrip(".") for ext in PHOTO_EXTENSIONS | VIDEO_EXTENSIONS),
        "max_bytes": settings.MAX_UPLOAD_BYTES,
        "max_files": MAX_FILES_PER_REQUEST,
        "chunk_bytes": settings.TUS_CHUNK_BYTES,  # resumable uploads (tus.py): bytes per PATCH
        "messages": {
            "not_accepted": not_accepted_message("{name}"),
            "too_large": too_large_message("{name}"),
            "empty": empty_message("{name}"),
            "too_many_files": too_many_files_message(),
        },
    }


def classify(upload: File) -> str:
    """Return "photo" or "video" for an acceptable upload, else raise UploadRejected."""
    name = upload.name or ""
    extension = PurePosixPath(name).suffix.lower()
    # A plain File (a tus upload assembled on disk) has no content_type: the extension decides.
    mime = (getattr(upload, "content_type", "") or "").split(";")[0].strip().lower()
    if upload.size is not None and upload.size > settings.MAX_UPLOAD_BYTES:
        raise UploadRejected(too_large_message(name), status=413)
    if upload.size == 0:
        raise UploadRejected(empty_message(name))
    if extension in PHOTO_EXTENSIONS:
        kind, allowed = "photo", PHOTO_MIME_TYPES
    elif extension in VIDEO_EXTENSIONS:
        kind, allowed = "video", VIDEO_MIME_TYPES
    else:
        raise UploadRejected(not_accepted_message(name))
    if mime not in allowed and mime not in UNKNOWN_MIME_TYPES:
        raise UploadRejected(
            f"“{name}” says it is {mime}, which does not match a {extension} {kind}. "
            "Attach the original file from your phone."
        )
    return kind


class CappedUploadHandler(FileUploadHandler):
    """Stop reading an upload the moment it is over the cap.

    A request whose declared length could only hold over-cap files is refused before a single
    byte is read; otherwise each file is counted as it streams and the upload stops at the cap.
    Views see ``request.upload_too_large`` and answer 413.
    """

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.request.upload_too_large = False
        self.file_bytes = 0
        # The view's own cap (RequestBodyLimitMiddleware sets it from the files it takes), else
        # 10 files.
        cap = getattr(self.request, "upload_request_cap", request_cap(MAX_FILES_PER_REQUEST))
        if content_length > cap:
            self.request.upload_too_large = True
            return QueryDict(encoding=encoding), MultiValueDict()
        return None

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.file_bytes = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.file_bytes += len(raw_data)
        if self.file_bytes > settings.MAX_UPLOAD_BYTES:
            self.request.upload_too_large = True
            # connection_reset: don't read (and throw away) the rest of a huge body.
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None
