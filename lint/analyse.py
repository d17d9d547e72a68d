"""Read one file's bytes and turn them into facts, or into the reason they cannot be.

Decoding follows the interpreter (PEP 263: UTF-8 unless a coding comment says otherwise),
a syntax error is worded and placed as Python itself would, code Python's compiler rejects
after parsing it (``await`` in a plain ``def``) is an error too, and nothing raises:
whatever goes wrong with one file becomes its :class:`~concurrency_lint.facts.ParseError`.
"""

from __future__ import annotations

import ast
import io
import tokenize
import warnings

from concurrency_lint.facts import FileFacts, ParseError


def decode_source(data: bytes) -> str:
    """Decode Python source as the interpreter would (PEP 263; UTF-8 by default)."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as error:
        if "invalid or missing encoding declaration" not in str(error):
            raise  # an unknown or contradictory coding cookie
        encoding = "utf-8"  # no cookie and bytes that are not UTF-8: say where below
    return data.decode(encoding)


def analyse_source(data: bytes, module: str, is_package: bool) -> FileFacts:
    """The facts of one file's content. Never raises: problems become ``facts.error``."""
    try:
        return _analyse(data, module, is_package)
    except RecursionError:
        error = ParseError("too deeply nested to analyse", 1, 1)
    except Exception as exception:  # one file must never stop the run
        error = ParseError(
            f"internal error while analysing this file ({type(exception).__name__}: "
            f"{exception}); please report it",
            1,
            1,
        )
    return FileFacts(module=module, is_package=is_package, error=error)


def _analyse(data: bytes, module: str, is_package: bool) -> FileFacts:
    try:
        text = decode_source(data)
    except SyntaxError as error:  # a bad coding cookie
        return failed(module, is_package, f"cannot decode: {error.msg}", error.lineno or 1, 1)
    except (UnicodeDecodeError, LookupError) as error:
        line = column = 1
        if isinstance(error, UnicodeDecodeError):
            before = data[: error.start]
            line = before.count(b"\n") + 1
            column = error.start - (before.rfind(b"\n") + 1) + 1
        return failed(module, is_package, f"cannot decode: {error}", line, column)

    import libcst as cst

    from concurrency_lint.extract import extract

    try:
        tree = cst.parse_module(text)
    except cst.ParserSyntaxError as error:
        return _syntax_error(text, module, is_package, error)
    rejected = _compile_error(text)
    if rejected is not None:
        return FileFacts(module=module, is_package=is_package, error=rejected)
    return extract(tree, module, is_package, text.count("\n") + 1)


def _compile_error(text: str) -> ParseError | None:
    """What Python's compiler rejects in code its parser (and libcst) accept: ``await`` in
    a plain ``def`` or outside any function, ``return`` with a value in an async generator,
    ``yield`` outside a function, ``nonlocal`` at module level, and the like.

    Errors of the grammar itself are left out: libcst accepted the file, so it is most
    likely newer syntax than the Python running the linter knows. About a tenth of the
    cost of the libcst parse, paid once per file content (the facts are cached).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning and friends are not errors
            compile(text, "<file>", "exec", dont_inherit=True)
    except SyntaxError as error:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                compile(text, "<file>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        return ParseError(
            f"syntax error: {error.msg}", max(error.lineno or 1, 1), max(error.offset or 1, 1)
        )
    except (ValueError, RecursionError, MemoryError, OverflowError):
        return None  # too deep or too big for the compiler here: not the code's fault
    return None


def _syntax_error(text: str, module: str, is_package: bool, error: Exception) -> FileFacts:
    """Report a syntax error the way Python itself words and places it."""
    try:
        compile(text, "<file>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as python_error:
        return failed(
            module,
            is_package,
            f"syntax error: {python_error.msg}",
            python_error.lineno or 1,
            python_error.offset or 1,
        )
    except (ValueError, RecursionError, MemoryError) as python_error:
        return failed(module, is_package, f"cannot parse: {python_error}", 1, 1)
    # Python accepts it but libcst does not (syntax newer than libcst knows).
    line = getattr(error, "raw_line", 1)
    column = getattr(error, "raw_column", 0) + 1
    message = " ".join(str(getattr(error, "message", error)).split())
    return failed(module, is_package, f"libcst cannot parse this file: {message}", line, column)


def failed(module: str, is_package: bool, message: str, line: int, column: int) -> FileFacts:
    return FileFacts(
        module=module,
        is_package=is_package,
        error=ParseError(message, max(line, 1), max(column, 1)),
    )


def analyse_job(job: tuple[bytes, str, bool]) -> FileFacts:
    """``analyse_source`` for one job tuple (what worker processes receive)."""
    return analyse_source(*job)
