#!/usr/bin/env python3
"""Translate a SAM template to plain CloudFormation, as `sam deploy` has
AWS do, and print it as JSON. Offline: no managed policy is looked up.

Usage: python3 translate.py [--plain] template.yaml

--plain reads a plain CloudFormation template (no transform, as a StackSet
with service-managed permissions requires) and prints it as JSON.
"""

import json
import os
import sys

# The translator fills pseudo parameters from a boto session's region; the
# output keeps them as Refs, so any region will do. No call is made.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """Managed policies are named by ARN in template.yaml; nothing to look up."""

    def load(self):
        return {}


def main(path, plain=False):
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    if plain:
        json.dump(template, sys.stdout, indent=1, sort_keys=True)
        return 0
    # `sam deploy` uploads local code first and points CodeUri at S3; the
    # transform accepts only that form.
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and not str(props.get("CodeUri", "")).startswith("s3://"):
            props["CodeUri"] = "s3://amishare-artifacts/bootstrap.zip"
    out = transform(template, {}, NoManagedPolicies())
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--plain":
        sys.exit(main(sys.argv[2], plain=True))
    sys.exit(main(sys.argv[1]))
