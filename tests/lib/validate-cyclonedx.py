"""Validates CycloneDX 1.6 JSON documents the way a consumer of them would:
with cyclonedx-python-lib (PyPI, the CycloneDX project's own library; its
JSON validator checks a document against the official 1.6 schema it
bundles, formats such as date-time included), and every purl with
packageurl-python (the purl project's library, which cyclonedx-python-lib
depends on): it must parse and print back the same.

    VENV/bin/python tests/lib/validate-cyclonedx.py FILE...

scripts/install-deps makes the virtual environment (its CYCLONEDX_VENV).
Prints one line per problem, naming the file, and exits 1 if there is
any; prints the library's version and exits 0 otherwise.
"""

import importlib.metadata
import json
import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL


def purls(value):
    """Every `purl` in a document."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "purl":
                yield item
            else:
                yield from purls(item)
    elif isinstance(value, list):
        for item in value:
            yield from purls(item)


def problems(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text, all_errors=True)
    for error in errors or ():
        yield f"schema: {error.data.message} (at {list(error.data.absolute_path)})"
    document = json.loads(text)
    if document.get("specVersion") != "1.6":
        yield f"specVersion is {document.get('specVersion')!r}, not '1.6'"
    for purl in purls(document):
        try:
            parsed = PackageURL.from_string(purl)
        except ValueError as e:
            yield f"purl {purl!r} does not parse: {e}"
            continue
        if parsed.to_string() != purl:
            yield f"purl {purl!r} prints back as {parsed.to_string()!r}"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    found = [f"{path}: {p}" for path in sys.argv[1:] for p in problems(path)]
    for line in found:
        print(line)
    if found:
        sys.exit(1)
    version = importlib.metadata.version("cyclonedx-python-lib")
    print(f"valid CycloneDX 1.6 (cyclonedx-python-lib {version}): {len(sys.argv) - 1} documents")


if __name__ == "__main__":
    main()
