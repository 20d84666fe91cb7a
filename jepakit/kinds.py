"""The component kinds, in one table: adding a kind means adding one row here.

Everything that lists kinds derives from :data:`KINDS`: the registration hook specs
(``jepakit/hookspecs.py``), the registry's tables, the recipe's sections
(``jepakit/recipe.py``), ``jepakit plugins`` and the conformance tests.
"""

from __future__ import annotations

import attrs

from jepakit import contracts


@attrs.frozen
class Kind:
    """One kind of component."""

    name: str
    """As used by ``jepakit.create(kind, name)`` and in messages."""
    hook: str
    """The registration hook plugins implement, returning ``jepakit.Component`` specs."""
    section: str | None
    """The recipe section that names this kind's component (None: not a training part)."""
    contract: type | None
    """The protocol components of this kind fit (``jepakit/contracts.py``)."""
    factory: str
    """The factory's signature, for the hook's docstring."""
    example: str
    """A registration example, for the hook's docstring."""
    many: bool = False
    """The recipe section may list several weighted components (loss terms)."""


KINDS: tuple[Kind, ...] = (
    Kind("method", "jepakit_methods", "method", contracts.Method,
         "factory(config, *, seed, **components) -> nn.Module fitting Method",
         'jepakit.Component("simsiam", SimSiam, SimSiamConfig)'),
    Kind("encoder", "jepakit_encoders", "encoder", contracts.Encoder,
         "factory(config) -> nn.Module fitting Encoder",
         'jepakit.Component("convnet", ConvNet, ConvNetConfig)'),
    Kind("masker", "jepakit_maskers", "masker", contracts.Masker,
         "factory(config) -> masker fitting Masker (must pickle: it runs in loader workers)",
         'jepakit.Component("checkerboard", Checkerboard, CheckerboardConfig)'),
    Kind("predictor", "jepakit_predictors", "predictor", contracts.Predictor,
         "factory(config, *, embed_dim, patch_grid) -> nn.Module fitting Predictor",
         'jepakit.Component("mlp", MLPPredictor, MLPPredictorConfig)'),
    Kind("projector", "jepakit_projectors", "projector", contracts.Projector,
         "factory(config, *, embed_dim) -> nn.Module mapping [B, D] to [B, out_dim]",
         'jepakit.Component("linear", LinearHead, LinearHeadConfig)'),
    Kind("target_updater", "jepakit_target_updaters", "target_updater", contracts.TargetUpdater,
         "factory(config, *, total_steps) -> updater fitting TargetUpdater",
         'jepakit.Component("frozen", FrozenTarget, FrozenTargetConfig)'),
    Kind("loss", "jepakit_losses", "loss", contracts.Loss,
         "factory(config) -> loss fitting Loss (reads the step outputs its ``inputs`` name)",
         'jepakit.Component("cosine", CosineLoss, CosineLossConfig)', many=True),
    Kind("dataset", "jepakit_datasets", "data", None,
         "factory(config, *, image_size: int, in_chans: int, seed: int, views) -> torch "
         "dataset of image tensors [C, H, W] (or lists of views) or (image, label) pairs",
         'jepakit.Component("my_images", MyImages, MyImagesConfig)'),
    Kind("converter", "jepakit_converters", None, None,
         "factory(config, *, source: Path, output: Path, overwrite: bool) -> list of report "
         "lines; reads a foreign checkpoint with weights_only=True and writes a jepakit "
         "weights file (`jepakit convert NAME IN OUT key=value ...`)",
         'jepakit.Component("mae-official", convert_mae, MAEConvertConfig)'),
)
RECIPE_KINDS: tuple[Kind, ...] = tuple(k for k in KINDS if k.section is not None)
"""The kinds a recipe names, one section each."""

BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}
BY_SECTION: dict[str, Kind] = {k.section: k for k in RECIPE_KINDS if k.section}
NAMES: tuple[str, ...] = tuple(BY_NAME)
