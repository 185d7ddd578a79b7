"""Commands that only look at files or talk to the server start without torch.

Importing torch takes 1-2 s and ~200 MB. ``nectargan --help``, ``visdom status``,
``data download`` and the Visdom server process need none of it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TORCH_MODULES = "sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))"


def test_the_command_line_and_file_only_tools_import_no_torch() -> None:
    code = (
        "import sys\n"
        "from nectargan.cli.main import build_parser\n"
        "build_parser()\n"
        "import nectargan.dataset, nectargan.dataset.download, nectargan.dataset.layout\n"
        "from nectargan.visualizer.visdom import assets\n"
        "assets.assets_present()\n"
        f"print({TORCH_MODULES})\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_dataset_package_still_exports_its_names() -> None:
    import nectargan.dataset as dataset

    for name in dataset.__all__:
        assert getattr(dataset, name).__name__ == name
    assert dataset.PairedDataset.__module__ == "nectargan.dataset.paired_dataset"


def test_the_visdom_server_process_loads_no_torch(private_visdom_server) -> None:
    maps = Path(f"/proc/{private_visdom_server.proc.pid}/maps").read_text()
    assert "libtorch" not in maps
