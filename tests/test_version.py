import json
from pathlib import Path

import xaiwidgets


def test_python_and_js_versions_agree():
    pkg = json.loads((Path(__file__).parents[1] / "package.json").read_text())
    assert xaiwidgets.__version__ == pkg["version"]
