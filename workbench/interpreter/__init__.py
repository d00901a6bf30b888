"""The interpreter: plan ▸ prepare ▸ eval over numpy reference kernels, with hooks."""

from .interpreter import CaptureHook, Hook, Interpreter, SignatureRunner, TimingHook

__all__ = ["Interpreter", "SignatureRunner", "Hook", "TimingHook", "CaptureHook"]
