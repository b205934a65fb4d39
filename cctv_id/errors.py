"""Error types that the CLI turns into one readable line and a non-zero exit code."""


class CctvIdError(Exception):
    """Base class: an expected failure with a message meant for the user."""

    exit_code = 1


class ConfigError(CctvIdError):
    exit_code = 2


class InputError(CctvIdError):
    """A user-supplied file (video, photo) is missing, unreadable or unusable."""

    exit_code = 3


class VideoError(InputError):
    """A video could not be opened or decoded."""


class EnrolmentError(InputError):
    """An enrolment photo has no usable face, or several faces."""


class ModelError(CctvIdError):
    """A model or weights file is missing or cannot be loaded."""

    exit_code = 4


class StoreError(CctvIdError):
    """The database cannot be reached or is inconsistent."""

    exit_code = 5


class NotFoundError(CctvIdError):
    """A queried person, run or track does not exist."""

    exit_code = 6


class StoppedOnSignal(CctvIdError):
    """A command stopped on SIGINT/SIGTERM after saving its work; the CLI leaves with
    ``exit_code`` without Python's shutdown, so a further signal cannot kill it midway."""

    def __init__(self, message: str = "", exit_code: int = 0):
        super().__init__(message)
        self.exit_code = exit_code


class RunInterrupted(StoppedOnSignal):
    """A run stopped on SIGINT/SIGTERM after committing its checkpoint (resumable)."""

    def __init__(self, message: str, signum: int | None = None):
        # 128 + signal number, the shell's convention: 130 for SIGINT, 143 for SIGTERM
        super().__init__(message, 128 + (signum or 2))
