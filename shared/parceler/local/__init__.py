"""The local mode: moto's server made safe for many clients, an in-process Lambda hook, resources.

``LocalAws`` (emulator), ``lambda_hook`` and ``create_local_stack`` (resources) are imported
from their modules; this package imports nothing heavy on its own.
"""
