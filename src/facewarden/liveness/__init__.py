"""Liveness building blocks: landmarks, head pose, eye openness, planar-attack check, passive PAD,
challenge evaluation and media sanity checks. Each block works on decoded frames
(`facewarden.imaging.video.Frame`); the fused decision is `facewarden.liveness.decision.LivenessChecker`."""
