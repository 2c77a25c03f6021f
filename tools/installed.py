"""Exit 0 when this Python already has stl-denoise and all that setup.cfg asks for, else 1.

``python tools/installed.py [EXTRA ...]`` checks the package, its
``install_requires`` and the named extras (``test``, ``notebook``...),
versions included.  Make runs it before ``pip install -e '.[EXTRA]'`` so that
``make test`` or ``make demo`` install what they need on first use and rerun
without a network (pip needs one even when nothing is missing).
"""

import configparser
import sys
from importlib import metadata
from pathlib import Path

try:
    from packaging.requirements import Requirement
except ImportError:  # a fresh virtual environment: pip carries its own copy
    from pip._vendor.packaging.requirements import Requirement

SETUP_CFG = Path(__file__).resolve().parents[1] / "setup.cfg"
DISTRIBUTION = "stl-denoise"


def requirements(extras=(), setup_cfg=SETUP_CFG):
    """The ``Requirement``s of the package and of ``extras`` as setup.cfg lists them."""
    setup = configparser.ConfigParser()
    setup.read(setup_cfg, encoding="utf-8")
    sections = [setup["options"]["install_requires"]]
    for extra in extras:
        if extra not in setup["options.extras_require"]:
            raise SystemExit(f"{setup_cfg}: no extra {extra!r} (there are "
                             f"{', '.join(setup['options.extras_require'])})")
        sections.append(setup["options.extras_require"][extra])
    lines = (line.strip() for section in sections for line in section.splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("#")]


def missing(requirement):
    """Why ``requirement`` is not met in this Python, or None when it is (or does not apply here)."""
    if requirement.marker is not None and not requirement.marker.evaluate():
        return None
    try:
        version = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        return f"{requirement.name} (not installed)"
    if not requirement.specifier.contains(version, prereleases=True):
        return f"{requirement.name} {version} (needs {requirement.specifier})"
    for extra in sorted(requirement.extras):  # e.g. tensorflow[and-cuda]: what that extra adds
        for line in metadata.requires(requirement.name) or []:
            added = Requirement(line)
            if added.marker is not None and added.marker.evaluate({"extra": extra}) \
                    and not added.marker.evaluate({"extra": ""}):
                added.marker = None
                problem = missing(added)
                if problem:
                    return f"{problem}, for {requirement.name}[{extra}]"
    return None


def main(extras):
    problems = [problem for problem in map(missing, [Requirement(DISTRIBUTION)] + requirements(extras)) if problem]
    if problems:
        print(f"to install: {', '.join(problems)}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
