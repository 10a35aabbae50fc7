"""Decoding methods by name, like `keras_hub.samplers.get`.

A decoding method is a search function with the common arguments
`(step_fn, initial_state, start_tokens, end_token, max_length, ...,
pad_token=0, constants=None)` that returns a `DecodingResult`; its own
options (`beam_width`, `temperature`, ...) are keyword arguments.
"""

from keras_attention.decoding.beam_search import beam_search
from keras_attention.decoding.greedy import greedy_search
from keras_attention.decoding.sampling import sampling_search

# One module-level table, so methods registered by users are found by
# everything that decodes by name.
_METHODS = {"greedy": greedy_search, "sampling": sampling_search, "beam": beam_search}


def get(name):
    """Returns the search function registered as `name`.

    Args:
        name: str, one of `names()`: `"beam"`, `"greedy"`, `"sampling"` or a
            name given to `register`.

    Raises:
        ValueError: For an unknown name; the message lists the known ones.

    Example:

    >>> get("beam") is beam_search
    True
    >>> get("nucleus")
    Traceback (most recent call last):
    ...
    ValueError: Unknown decoding method 'nucleus'; known methods: ['beam', 'greedy', 'sampling']
    """
    if not isinstance(name, str) or name not in _METHODS:
        raise ValueError(f"Unknown decoding method {name!r}; known methods: {names()}")
    return _METHODS[name]


def names():
    """The registered decoding method names, sorted.

    Example:

    >>> names()
    ['beam', 'greedy', 'sampling']
    """
    return sorted(_METHODS)


def register(name, fn, override=False):
    """Makes `fn` the decoding method that `get(name)` returns.

    Args:
        name: Non-empty str.
        fn: The search function (see the module docstring for the
            arguments it takes).
        override: Replace a method already registered under `name`
            (a built-in one included); without it that is an error, so
            two libraries cannot silently take the same name.

    Returns:
        `fn`.

    Example:

    >>> def first_token_search(step_fn, initial_state, start_tokens, end_token, max_length,
    ...                        pad_token=0, constants=None):
    ...     return greedy_search(step_fn, initial_state, start_tokens, end_token, 1,
    ...                          pad_token=pad_token, constants=constants)
    >>> register("first_token", first_token_search) is first_token_search
    True
    >>> get("first_token") is first_token_search
    True
    >>> _ = _METHODS.pop("first_token")  # (the example cleans up after itself)
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"A decoding method name must be a non-empty str, received {name!r}")
    if not callable(fn):
        raise ValueError(f"The decoding method {name!r} must be callable, received {fn!r}")
    if name in _METHODS and not override:
        raise ValueError(
            f"A decoding method is already registered as {name!r}; pass override=True to "
            "replace it"
        )
    _METHODS[name] = fn
    return fn
