"""The model bundle manifest (CONTRACT section 6): what a bundle holds and how to run it.

A bundle is a folder with ``manifest.yaml``, the model file it names (runtime ``onnx``) and
``signature.json`` (see ``signing.py``). ``open_bundle`` reads and checks the folder; every
problem is an ``InvalidManifest`` whose ``reason`` is one of ``REASONS``.

Inputs are keyed by the ONNX input name; each says where its tensor comes from::

    inputs:
      features: {from: values, names: [temperature, vibration_rms]}  # scalars, in order -> last dim
      audio: {from: array, value: audio}                             # one array value
      x: {from: tensor, value: image, layout: HWC,                   # a tensor value, any rank
          preprocess: {resize: [224, 224], scale: 0.00392, mean: [0.485, 0.456, 0.406],
                       std: [0.229, 0.224, 0.225], channel_order: bgr}}
      sample_rate: {from: constant, value: 16000, dtype: int64}      # any dtype
      h_in: {from: state, output: h_out, initial: {zeros: [8]}}      # fed back per device

The manifest is signed as the raw mapping read from YAML (``Bundle.raw``), not as this model's
dump, so that a newer edgecloud with more defaults still verifies an older bundle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgecloud.core.errors import InvalidManifest

MANIFEST_FILE = "manifest.yaml"
SIGNATURE_FILE = "signature.json"

REASONS = (
    "not_found",  # no manifest.yaml in the folder
    "too_large",  # manifest or model file over the size limit
    "bad_yaml",  # manifest is not parseable YAML
    "not_mapping",  # YAML, but not a mapping
    "missing_field",  # a required field is absent
    "invalid_field",  # a field of the wrong type, value or name
    "inconsistent",  # fields that contradict each other (decision on an unmapped output)
    "unsafe_path",  # file escapes the bundle folder (.., absolute, symlink out)
    "file_missing",  # the model file named by ``file`` is not there
)

DTYPES = (
    "float16", "float32", "float64", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "bool", "string",
)  # fmt: skip
Dtype = Literal[
    "float16", "float32", "float64", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "bool", "string",
]  # fmt: skip
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
VERSION_PATTERN = r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$"
Scalar = int | float | bool | str
Tensor = Scalar | list[Any]


@dataclass(frozen=True)
class ManifestLimits:
    max_manifest_bytes: int = 64 * 1024
    max_file_bytes: int = 512 * 1024 * 1024
    max_inputs: int = 64


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ValuesInput(_Strict):
    """Named scalar reading values, in order, as the last dimension."""

    from_: Literal["values"] = Field(alias="from")
    names: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    dtype: Dtype | None = None  # default: the model input's dtype


class ArrayInput(_Strict):
    """One array reading value (e.g. an audio frame) as the trailing dimension."""

    from_: Literal["array"] = Field(alias="from")
    value: Annotated[str, Field(min_length=1)]
    dtype: Dtype | None = None


class Preprocess(_Strict):
    """Applied in this order to an image tensor (``layout`` set): resize (bilinear, to
    ``[height, width]``), channel order (``bgr`` reverses the reading's RGB channels), ``scale``
    (multiplied), ``mean`` / ``std`` per channel ((x - mean) / std); then the tensor is put in
    the model's layout and cast to its dtype."""

    resize: (
        Annotated[list[Annotated[int, Field(ge=1, le=8192)]], Field(min_length=2, max_length=2)]
        | None
    ) = None
    channel_order: Literal["rgb", "bgr"] = "rgb"
    scale: float | None = None
    mean: Annotated[list[float], Field(min_length=1, max_length=64)] | None = None
    std: (
        Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1, max_length=64)] | None
    ) = None

    @model_validator(mode="after")
    def _same_channels(self) -> Preprocess:
        if self.mean is not None and self.std is not None and len(self.mean) != len(self.std):
            raise ValueError("mean and std need one value per channel each")
        return self


class TensorInput(_Strict):
    """One tensor reading value (nested array or binary form) as one reading's slice of the
    input, of the model's rank (less the batch axis). ``layout``: the reading's layout of an
    image (``HWC`` as cameras give it, or ``CHW``); the model's is ``model_layout``. Without a
    layout the tensor goes in as it is (only a cast). ``preprocess`` needs a layout."""

    from_: Literal["tensor"] = Field(alias="from")
    value: Annotated[str, Field(min_length=1)]
    dtype: Dtype | None = None  # the model input's dtype; checked at load and push
    layout: Literal["HWC", "CHW"] | None = None
    model_layout: Literal["HWC", "CHW"] = "CHW"
    preprocess: Preprocess | None = None

    @model_validator(mode="after")
    def _layout_for_preprocess(self) -> TensorInput:
        if self.preprocess is not None and self.layout is None:
            raise ValueError("preprocess works on images: give layout (HWC or CHW)")
        return self


class ConstantInput(_Strict):
    """The same tensor for every reading (broadcast over the batch where the model has one)."""

    from_: Literal["constant"] = Field(alias="from")
    value: Tensor
    dtype: Dtype


class Zeros(_Strict):
    zeros: list[Annotated[int, Field(ge=1)]]


class StateInput(_Strict):
    """An output of the previous call for the same device, fed back; ``initial`` at first."""

    from_: Literal["state"] = Field(alias="from")
    output: Annotated[str, Field(min_length=1)]
    initial: Zeros | Tensor


InputSpec = Annotated[
    ValuesInput | ArrayInput | TensorInput | ConstantInput | StateInput,
    Field(discriminator="from_"),
]


class OutputRef(_Strict):
    """Which ONNX output (and which element of its per-reading part) a result comes from.

    Without ``reduce``: element ``index`` of the reading's part, flattened (or its only one).
    ``axis`` + ``index`` first take slice ``index`` along ``axis`` of the reading's part (a
    class's channel of a [K, H, W] map, say); ``reduce`` then works on all its cells:
    ``argmax`` (the flat index of the largest, named by ``classes`` if given), ``max``, ``min``,
    ``mean``, ``sum``, ``topk`` (the mean of the ``k`` largest), ``count_above`` (how many
    cells are over ``threshold``).
    """

    output: Annotated[str, Field(min_length=1)]
    index: Annotated[int, Field(ge=0)] | None = None
    axis: Annotated[int, Field(ge=0, le=7)] | None = None
    reduce: Literal["argmax", "max", "min", "mean", "sum", "topk", "count_above"] | None = None
    k: Annotated[int, Field(ge=1)] | None = None
    threshold: float | None = None
    classes: list[str] | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> OutputRef:
        if self.index is not None and self.reduce is not None and self.axis is None:
            raise ValueError("give either index or reduce, not both (or axis + index + reduce)")
        if self.axis is not None and (self.index is None or self.reduce is None):
            raise ValueError("axis selects a slice: give index and reduce with it")
        if (self.reduce == "topk") != (self.k is not None):
            raise ValueError("reduce topk and k go together")
        if (self.reduce == "count_above") != (self.threshold is not None):
            raise ValueError("reduce count_above and threshold go together")
        return self


def _ref(value: Any) -> Any:
    return {"output": value} if isinstance(value, str) else value


class Outputs(_Strict):
    score: OutputRef | None = None
    label: OutputRef | None = None
    confidence: OutputRef | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:  # ``score: name`` for ``score: {output: name}``
        return {k: _ref(v) for k, v in data.items()} if isinstance(data, dict) else data


class Rule(_Strict):
    """True when any given condition holds."""

    score_above: float | None = None
    label_in: list[str | int] | None = None
    confidence_below: float | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Rule:
        if self.score_above is None and self.label_in is None and self.confidence_below is None:
            raise ValueError("a rule needs score_above, label_in or confidence_below")
        return self

    def holds(self, score: float | None, label: Any, confidence: float | None) -> bool:
        return (
            (self.score_above is not None and score is not None and score > self.score_above)
            or (self.label_in is not None and label is not None and label in self.label_in)
            or (
                self.confidence_below is not None
                and confidence is not None
                and confidence < self.confidence_below
            )
        )


class Decision(_Strict):
    anomaly: Rule
    escalate: Rule | None = None


class OpenAISpec(_Strict):
    """Runtime ``openai``: an OpenAI-compatible endpoint (a NIM) answers for each reading.

    The base URL is read from ``base_url_env`` when set there, else ``base_url``; the key from
    ``api_key_env``. ``prompt`` is a ``str.format`` template with ``{device_id}``, ``{seq}``,
    ``{ts}`` and ``{values}`` (the values as JSON). The answer is a JSON object; ``score_key``,
    ``label_key``, ``anomaly_key`` and ``confidence_key`` name its fields.
    """

    model: Annotated[str, Field(min_length=1)]
    base_url: str | None = None
    base_url_env: str | None = "EDGECLOUD_NIM_BASE_URL"
    api_key_env: str | None = "EDGECLOUD_NIM_API_KEY"
    system: str = "You are an industrial sensor anomaly detector. Answer in JSON only."
    prompt: Annotated[str, Field(min_length=1)]
    json_schema: dict[str, Any] | None = None
    score_key: str = "score"
    label_key: str | None = "label"
    anomaly_key: str | None = "anomaly"
    confidence_key: str | None = None
    timeout_s: Annotated[float, Field(gt=0)] = 10.0
    max_retries: Annotated[int, Field(ge=0, le=10)] = 2
    concurrency: Annotated[int, Field(ge=1, le=256)] = 4


class Manifest(_Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    version: Annotated[str, Field(pattern=VERSION_PATTERN)]
    runtime: Literal["onnx", "openai"]
    file: str | None = None
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    description: str | None = None
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    outputs: Outputs = Field(default_factory=Outputs)
    decision: Decision
    openai: OpenAISpec | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    limits: dict[str, float] = Field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def state_outputs(self) -> dict[str, str]:
        """ONNX state output name -> the input it feeds."""
        return {s.output: name for name, s in self.inputs.items() if isinstance(s, StateInput)}


def _check_consistent(m: Manifest, limits: ManifestLimits) -> None:
    def bad(detail: str) -> InvalidManifest:
        return InvalidManifest("inconsistent", detail)

    if m.runtime == "onnx":
        if not m.file or not m.sha256:
            raise InvalidManifest("missing_field", "runtime onnx needs 'file' and 'sha256'")
        if not m.inputs:
            raise InvalidManifest("missing_field", "runtime onnx needs 'inputs'")
        if len(m.inputs) > limits.max_inputs:
            raise InvalidManifest("too_large", f"{len(m.inputs)} inputs, limit {limits.max_inputs}")
        if m.outputs.score is None and m.outputs.label is None:
            raise bad("outputs must map at least one of score or label")
    elif m.openai is None:
        raise InvalidManifest("missing_field", "runtime openai needs an 'openai' section")
    elif (m.file is None) != (m.sha256 is None):
        raise bad("'file' and 'sha256' go together")
    rules = [("anomaly", m.decision.anomaly), ("escalate", m.decision.escalate)]
    mapped = {"score": True, "label": True, "confidence": True}
    if m.runtime == "onnx":
        mapped = {k: getattr(m.outputs, k) is not None for k in mapped}
    elif m.openai is not None:
        mapped["confidence"] = m.openai.confidence_key is not None
        mapped["label"] = m.openai.label_key is not None
    for which, rule in rules:
        if rule is None:
            continue
        for field, key in (("score_above", "score"), ("label_in", "label")):
            if getattr(rule, field) is not None and not mapped[key]:
                raise bad(f"decision.{which}.{field} but no {key} output is mapped")
        if rule.confidence_below is not None and not mapped["confidence"]:
            raise bad(f"decision.{which}.confidence_below but no confidence output is mapped")


def _reason_for(exc: ValidationError) -> InvalidManifest:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "missing":
        return InvalidManifest("missing_field", f"field {loc!r} is required")
    return InvalidManifest("invalid_field", f"{loc or 'manifest'}: {err['msg']}")


MAX_YAML_NODES = 100_000  # a 64 KiB manifest without aliases has fewer than 33,000


def _expanded_nodes(root: yaml.Node, budget: int) -> int:
    """How many nodes ``root`` has once every alias is expanded, counting no further than
    ``budget``: an alias bomb (each level ten aliases of the one before) or a recursive
    alias stops here after ``budget`` steps, before anything is built from it."""
    count = 0
    stack = [root]
    while stack:
        node = stack.pop()
        count += 1
        if count > budget:
            break
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append(key)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return count


def _load_yaml(text: str | bytes) -> Any:
    """``yaml.safe_load`` (libyaml's parser where it is built), with alias expansion bounded
    by ``MAX_YAML_NODES``: the document is composed (aliases are shared nodes, cheap), its
    expanded size counted, and only then turned into Python objects (which later steps, the
    pydantic check and the canonical JSON of the signature, walk in full)."""
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_nodes(node, MAX_YAML_NODES) > MAX_YAML_NODES:
            raise InvalidManifest(
                "too_large",
                f"manifest expands to more than {MAX_YAML_NODES} YAML values "
                "(anchors and aliases); write it out without aliases",
            )
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise InvalidManifest("bad_yaml", f"manifest is not YAML: {exc}") from exc
    except RecursionError as exc:  # nesting deeper than the interpreter's stack
        raise InvalidManifest("bad_yaml", "manifest nests too deeply") from exc
    finally:
        loader.dispose()


def parse_manifest(
    text: str | bytes, limits: ManifestLimits | None = None
) -> tuple[Manifest, dict[str, Any]]:
    """Manifest text -> (checked manifest, the raw mapping that is signed)."""
    limits = limits or ManifestLimits()
    size = len(text.encode() if isinstance(text, str) else text)
    if size > limits.max_manifest_bytes:
        raise InvalidManifest(
            "too_large", f"manifest is {size} bytes, limit {limits.max_manifest_bytes}"
        )
    raw = _load_yaml(text)
    if not isinstance(raw, dict):
        raise InvalidManifest(
            "not_mapping", f"manifest is YAML {type(raw).__name__}, not a mapping"
        )
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        raise _reason_for(exc) from exc
    _check_consistent(manifest, limits)
    return manifest, raw


def safe_member(folder: Path, name: str) -> Path:
    """``folder/name`` resolved, refusing anything that leaves ``folder`` (.., absolute, links)."""
    if not name or Path(name).is_absolute() or re.match(r"^[A-Za-z]:", name) or "\\" in name:
        raise InvalidManifest("unsafe_path", f"{name!r} must be a relative path inside the bundle")
    root = folder.resolve()
    target = (folder / name).resolve()
    if target == root or not target.is_relative_to(root):
        raise InvalidManifest("unsafe_path", f"{name!r} leaves the bundle folder")
    return target


@dataclass(frozen=True)
class Bundle:
    folder: Path
    manifest: Manifest
    raw: dict[str, Any]
    model_path: Path | None

    @property
    def signature_path(self) -> Path:
        return self.folder / SIGNATURE_FILE


def open_bundle(folder: Path, limits: ManifestLimits | None = None) -> Bundle:
    """Read and check ``folder/manifest.yaml`` and locate its model file (not yet hashed)."""
    limits = limits or ManifestLimits()
    path = safe_member(folder, MANIFEST_FILE)
    if not path.is_file():
        raise InvalidManifest("not_found", f"no {MANIFEST_FILE} in the bundle")
    if path.stat().st_size > limits.max_manifest_bytes:
        raise InvalidManifest(
            "too_large", f"{MANIFEST_FILE} is over {limits.max_manifest_bytes} bytes"
        )
    manifest, raw = parse_manifest(path.read_bytes(), limits)
    model_path = None
    if manifest.file is not None:
        model_path = safe_member(folder, manifest.file)
        if not model_path.is_file():
            raise InvalidManifest(
                "file_missing", f"model file {manifest.file!r} is not in the bundle"
            )
        size = model_path.stat().st_size
        if size > limits.max_file_bytes:
            raise InvalidManifest(
                "too_large", f"{manifest.file} is {size} bytes, limit {limits.max_file_bytes}"
            )
    return Bundle(folder=folder, manifest=manifest, raw=raw, model_path=model_path)
