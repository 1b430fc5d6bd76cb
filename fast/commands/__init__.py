"""Drivers of the `fast` subcommands (one module each): each ``run_*`` reads a subcommand's arguments, calls the domain
packages below (data, diffusion, samplers, methods, segmentation, report) and writes the outputs."""
