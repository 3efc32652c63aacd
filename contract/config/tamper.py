"""Camera tamper and video-quality diagnosis settings (edge/quality/tamper.py).

Levels are grey levels (0-255) of the work image, the frame shrunk to ``work_width_px``;
ratios compare a frame's measure with the camera's reference (its own picture learnt at
the start and followed slowly while the view is healthy), so one set of defaults suits a
bright street and a dim car park alike. The defaults were set on the shared videos (an
indoor table, a car park seen from above, a hallway) with dusk, lights switching on, the
infrared switch, shake, snow, rain and H.264 recompression applied; the module docstring of
edge/quality/tamper.py says what each measure is.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from contract.config.strict import Strict


class TamperConfig(Strict):
    """Tamper and video-quality diagnosis: covered, turned, defocused, frozen, noisy, glare.

    A frame is judged against the reference; a verdict is raised once frames have looked
    tampered for ``hold_s`` and ends once they have not shown it for ``clear_s``."""

    enabled: bool = Field(True, description="Judge this camera's picture.")
    work_width_px: int = Field(
        320, ge=160, le=640, description="Frames are shrunk to this width (px) to be measured."
    )
    interval_s: float = Field(
        0.2, ge=0, le=2.0, description="Analyse a frame at most this often (s); 0: every frame."
    )
    reference_s: float = Field(
        5.0, gt=0, description="The reference is learnt from the frames of the first seconds."
    )
    adapt_s: float = Field(
        600.0,
        gt=0,
        description="Time constant (s) with which the reference follows a healthy view "
        "(slow drift, dusk, weather); it does not adapt while a frame looks tampered.",
    )
    hold_s: float = Field(
        2.5, gt=0, description="Frames must look tampered this long (s) before a verdict."
    )
    clear_s: float = Field(
        3.0, gt=0, description="Frames must not show the verdict this long (s) to end it."
    )
    gap_s: float = Field(
        1.0,
        ge=0,
        description="A spell this short (s) of frames that look fine does not break the run "
        "of tampered-looking frames a verdict waits for (a key frame, a passing car).",
    )
    shake_px: int = Field(
        4, ge=1, le=16, description="Shift (px at work size) the scene match searches: shake."
    )
    scene_match_min: float = Field(
        0.45,
        gt=0,
        lt=1,
        description="Below this scene match (median normalised correlation of gradient cells "
        "with the reference) the reference scene is lost: turned, or covered.",
    )
    covered_brightness_ratio: float = Field(
        0.6,
        gt=0,
        lt=1,
        description="covered: the scene is lost and brightness fell below this share of the "
        "reference's (a hand or tape blocks the light)...",
    )
    covered_contrast_ratio: float = Field(
        0.35,
        gt=0,
        lt=1,
        description="...or local contrast fell below this share of the reference's (a flat "
        "cloth or card).",
    )
    defocused_sharpness_ratio: float = Field(
        0.45,
        gt=0,
        lt=1,
        description="defocused: the scene still matches but sharpness (fine detail per unit "
        "of contrast) fell below this share of the reference's.",
    )
    coarse_match_min: float = Field(
        0.6,
        gt=0,
        le=1,
        description="defocused, not turned, when the scene match is lost but the picture's "
        "coarse layout still correlates this well with the reference's and sharpness "
        "collapsed (a strong blur erases the edges the scene match compares).",
    )
    frozen_change_max: float = Field(
        0.001,
        ge=0,
        description="frozen: consecutive analysed frames differ by at most this mean "
        "absolute grey level (bit-identical: 0), on a camera that showed live change.",
    )
    frozen_hold_s: float = Field(
        30.0,
        gt=0,
        description="frozen needs its frames unchanged this long (s), not hold_s: an encoder "
        "on a still scene, or a camera's noise reduction, repeats frames for seconds (a car "
        "waiting at a red light in a noiseless picture looked frozen for 7 s).",
    )
    live_share_min: float = Field(
        0.5,
        gt=0,
        le=1,
        description="A camera is live (frozen can be judged) when at least this share of its "
        "analysed frames changed during the reference; a source that repeats frames on a "
        "still scene never raises frozen.",
    )
    noise_min: float = Field(
        4.0, gt=0, description="noisy: estimated noise sigma (grey levels) of at least this..."
    )
    noise_ratio: float = Field(
        3.0, gt=1, description="...and at least this many times the reference's."
    )
    glare_loss_min: float = Field(
        0.15,
        gt=0,
        lt=1,
        description="glare: at least this share of the reference's structure lies under "
        "saturated pixels that a change of exposure does not explain.",
    )

    @model_validator(mode="after")
    def _hold_beyond_gaps(self) -> TamperConfig:
        if self.gap_s >= self.hold_s:
            raise ValueError(f"tamper: gap_s ({self.gap_s}) must be below hold_s ({self.hold_s})")
        return self
