"""Torch modules and tensors as plain data, for pickle, joblib and skops files.

An estimator's fitted networks are stored as :class:`TorchState`: the module tree as
nested dicts of numpy arrays, numbers and strings (the class of each module by name,
its parameters, buffers, sub-modules and plain attributes). A file then holds no torch
object, so it loads with any torch version, on a machine without the GPU it was fitted
on, and through :mod:`skops.io`, whose loader refuses types it does not know: the only
types it sees are the estimator's class and :class:`TorchState`.

Loading rebuilds only subclasses of ``torch.nn.Module`` defined in ``torch.nn`` or
``skfairbilevel.nn`` (:data:`TRUSTED_MODULE_PREFIXES`); any other class named in a file
is refused.
"""

import importlib

import numpy as np
import torch
from torch import nn

__all__ = ["TorchState", "module_state", "module_from_state", "TRUSTED_MODULE_PREFIXES"]

#: modules whose ``nn.Module`` subclasses a state may name
TRUSTED_MODULE_PREFIXES = ("torch.nn.", "skfairbilevel.nn.")

_MODULE_INTERNALS = frozenset(vars(nn.Module()))


def _array(t):
    """``(array, order)``: a tensor's values with its memory layout (the order of its
    dimensions by decreasing stride), so that the rebuilt tensor has the same strides."""
    t = t.detach().to("cpu")
    order = list(range(t.dim()))
    strides = t.stride()
    if t.dim() > 1 and not t.is_contiguous():
        candidate = sorted(order, key=lambda d: -strides[d])
        permuted = t.permute(candidate)
        if permuted.is_contiguous():
            return permuted.numpy(), candidate
    return t.contiguous().numpy(), order


def _tensor(array, order):
    t = torch.from_numpy(np.array(array, copy=True))
    if list(order) != list(range(len(order))):
        t = t.permute(tuple(int(i) for i in np.argsort(order)))
    return t


def _value_state(value, where):
    """A plain attribute of a module as plain data (tensors, dtypes and devices tagged)."""
    if value is None or isinstance(value, (bool, int, float, str, np.ndarray, np.generic)):
        return value
    if isinstance(value, torch.Tensor):
        array, order = _array(value)
        return {"__tensor__": array, "order": order}
    if isinstance(value, torch.dtype):
        return {"__dtype__": str(value).replace("torch.", "")}
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, (list, tuple)):
        items = [_value_state(v, where) for v in value]
        return items if isinstance(value, list) else {"__tuple__": items}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _value_state(v, f"{where}[{k!r}]") for k, v in value.items()}}
    if isinstance(value, (set, frozenset)):
        return {"__set__": sorted(_value_state(v, where) for v in value)}
    raise TypeError(
        f"cannot store {where} of type {type(value).__name__} as plain data; a module "
        f"attribute must be a number, string, tensor, dtype, device or a list, tuple or "
        f"dict of those."
    )


def _value_from_state(value):
    if isinstance(value, list):
        return [_value_from_state(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return _tensor(value["__tensor__"], value["order"])
    if "__dtype__" in value:
        dtype = getattr(torch, str(value["__dtype__"]), None)
        if not isinstance(dtype, torch.dtype):
            raise TypeError(f"{value['__dtype__']!r} is not a torch dtype.")
        return dtype
    if "__device__" in value:
        return torch.device(value["__device__"])
    if "__tuple__" in value:
        return tuple(_value_from_state(v) for v in value["__tuple__"])
    if "__set__" in value:
        return {_value_from_state(v) for v in value["__set__"]}
    return {k: _value_from_state(v) for k, v in value["__dict__"].items()}


def module_state(module):
    """A module tree as nested dicts of numpy arrays, numbers and strings.

    Forward / backward hooks are not stored (the package's modules use none).
    """
    cls = type(module)
    params = {}
    for name, p in module._parameters.items():
        params[name] = None if p is None else {**_value_state(p, name), "grad": p.requires_grad}
    return {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "training": bool(module.training),
        "parameters": params,
        "buffers": {
            name: None if b is None else _value_state(b, name)
            for name, b in module._buffers.items()
        },
        "non_persistent": sorted(module._non_persistent_buffers_set),
        "modules": {
            name: None if m is None else module_state(m) for name, m in module._modules.items()
        },
        "attributes": {
            name: _value_state(value, f"{cls.__name__}.{name}")
            for name, value in vars(module).items()
            if name not in _MODULE_INTERNALS
        },
    }


def _module_class(path):
    if not path.startswith(TRUSTED_MODULE_PREFIXES):
        raise TypeError(
            f"refusing to rebuild the module class {path!r}: only torch.nn and "
            f"skfairbilevel.nn modules are loaded from a stored estimator."
        )
    module_name, _, qualname = path.rpartition(".")
    while module_name:
        try:
            obj = importlib.import_module(module_name)
            break
        except ModuleNotFoundError:  # a nested class: step one name back
            module_name, _, outer = module_name.rpartition(".")
            qualname = f"{outer}.{qualname}"
    else:
        raise TypeError(f"cannot import the module class {path!r}.")
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise TypeError(f"{path!r} is not a torch.nn.Module subclass.")
    return obj


def module_from_state(state, device=None):
    """The module tree of :func:`module_state`, on ``device`` (default: CPU)."""
    module = _module_class(state["class"]).__new__(_module_class(state["class"]))
    nn.Module.__init__(module)
    module.training = state["training"]
    for name, value in state["attributes"].items():
        module.__dict__[name] = _value_from_state(value)
    for name, p in state["parameters"].items():
        module._parameters[name] = (
            None
            if p is None
            else nn.Parameter(_value_from_state(p).to(device), requires_grad=p["grad"])
        )
    for name, b in state["buffers"].items():
        module._buffers[name] = None if b is None else _value_from_state(b).to(device)
    module._non_persistent_buffers_set.update(state["non_persistent"])
    for name, sub in state["modules"].items():
        module._modules[name] = None if sub is None else module_from_state(sub, device)
    return module


class TorchState:
    """A torch module or tensor stored as plain data (see the module's docstring).

    Parameters
    ----------
    obj : torch.nn.Module or torch.Tensor
        What to store (from any device).
    """

    def __init__(self, obj):
        if isinstance(obj, nn.Module):
            self.module = module_state(obj)
        else:
            self.tensor = _value_state(obj, "tensor")

    def restore(self, device=None):
        """The module or tensor, on ``device`` (default: CPU)."""
        if hasattr(self, "module"):
            return module_from_state(self.module, device)
        return _value_from_state(self.tensor).to(device)
