"""Keyword parameters read back from the constructor's signature (scikit-learn's convention).

Shared by :class:`dsp.bidder.Bidder` and :class:`dsp.strategy.PricingStrategy`: ``__init__`` only
stores its keyword parameters, unmodified, so :meth:`Parameterized.get_params` can read them back
and ``type(obj)(**obj.get_params())`` builds an equivalent, unfitted object.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Self

log = logging.getLogger(__name__)

_PARAM_KINDS = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class Parameterized:
    """Parameters in, ``get_params``/``set_params`` and a ``repr`` that shows them."""

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        """The constructor's keyword parameters, in signature order."""
        init = cls.__init__
        if init is object.__init__:
            return ()
        names = []
        for p in inspect.signature(init).parameters.values():
            if p.kind is inspect.Parameter.VAR_POSITIONAL:
                raise TypeError(
                    f"{cls.__name__}.__init__ must take keyword parameters only, not *{p.name}"
                )
            if p.kind in _PARAM_KINDS and p.name != "self":
                names.append(p.name)
        return tuple(names)

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters as stored on the instance: ``type(self)(**get_params())``
        builds an equivalent, unfitted object."""
        return {name: getattr(self, name) for name in self.param_names()}

    def set_params(self, **params: Any) -> Self:
        """Change constructor parameters (names are checked against the signature)."""
        known = self.param_names()
        for name, value in params.items():
            if name not in known:
                raise ValueError(
                    f"{type(self).__name__} has no parameter {name!r}; "
                    f"its parameters are: {', '.join(known) or '(none)'}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        try:
            params = self.get_params()
        except (AttributeError, TypeError):
            return f"{type(self).__name__}(<unset parameters>)"
        inner = ", ".join(f"{k}={v!r}" for k, v in params.items())
        return f"{type(self).__name__}({inner})"
