#!/usr/bin/env python3
"""Run moto's server on loopback, patched to behave as AWS documents.

Stock moto 5.2.1 differs from AWS in a few ways that matter to amishare
(sharing AMIs, their EBS snapshots and the snapshots' KMS keys). This script
monkeypatches those spots, wrapping moto's own functions where it can, and then
serves moto's WSGI app in-process.

Usage:
    python3 launcher.py [--host 127.0.0.1] [--port 0] [--watch-stdin]

--port 0 picks a free port. Once the server answers, a single line
"READY http://HOST:PORT" is printed on stdout; the server then runs until
SIGTERM or SIGINT (or, with --watch-stdin, until stdin reaches end of file,
which is how the Go harness makes sure no server outlives its test binary).

Patches were written against, and checked with, moto 5.2.1.
"""

import argparse
import os
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

MOTO_VERSION = "5.2.1"
INSTALL_HINT = f"install it with: pip install 'moto[server]=={MOTO_VERSION}'"

# Default AMIs: moto loads tens of thousands of public AMIs into every region
# (each with an invented snapshot) the first time EC2 is used. AWS accounts
# see their own images first and amishare never uses public ones, so keep the
# backend small and DescribeSnapshots readable. Set
# MOTO_EC2_LOAD_DEFAULT_AMIS=true to get them back.
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

try:
    import moto
    from moto.core.responses import ActionResult, EmptyResult
    from moto.ec2.exceptions import InvalidAMIIdError, MalformedAMIIdError
    from moto.ec2.models.amis import Ami, AmiBackend
    from moto.ec2.models.elastic_block_store import EBSBackend
    from moto.ec2.responses.amis import AmisResponse
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore
    from moto.kms.models import Key
    from moto.kms.responses import KmsResponse
    from moto.server import ThreadedMotoServer
except ImportError as err:  # pragma: no cover - depends on the machine
    print(f"launcher: cannot import moto ({err}); {INSTALL_HINT}", file=sys.stderr)
    sys.exit(3)


# --- Patch 1: RegisterImage honours BlockDeviceMappings ----------------------
#
# moto: AmisResponse.register_image reads only Name and Description, and every
# Ami invents one unencrypted 15 GiB snapshot that Ami.block_device_mappings
# reports as the only mapping. RootDeviceName is ignored too.
# AWS: RegisterImage uses the mappings it is given. A mapping naming a
# SnapshotId points the AMI at that snapshot (whose encryption and KMS key are
# its own), DescribeImages returns exactly those mappings, and RootDeviceName
# is the one requested.
# For convenience (AWS would need a real volume), an Ebs mapping without a
# SnapshotId creates a volume with its Encrypted/KmsKeyId/VolumeSize and
# snapshots it, as CreateImage would.

_stock_register_image_response = AmisResponse.register_image
_stock_register_image = AmiBackend.register_image
_stock_block_device_mappings = Ami.block_device_mappings


def _register_image_response(self):
    mappings = self._get_param("BlockDeviceMappings", [])
    root_device_name = self._get_param("RootDeviceName")
    if not mappings and not root_device_name:
        return _stock_register_image_response(self)
    self.error_on_dryrun()
    image = self.ec2_backend.register_image(
        self._get_param("Name"),
        self._get_param("Description", ""),
        block_device_mappings=mappings,
        root_device_name=root_device_name,
    )
    return ActionResult({"ImageId": image.id})


def _register_image(
    self, name=None, description=None, block_device_mappings=None, root_device_name=None
):
    # Resolve named snapshots first, so an unknown SnapshotId fails with
    # InvalidSnapshot.NotFound before any AMI exists.
    for mapping in block_device_mappings or []:
        snapshot_id = (mapping.get("Ebs") or {}).get("SnapshotId")
        if snapshot_id:
            self.get_snapshot(snapshot_id)

    ami = _stock_register_image(self, name, description)
    if root_device_name:
        ami.root_device_name = root_device_name
    if not block_device_mappings:
        return ami

    # Drop the snapshot stock Ami.__init__ invented: AWS creates none.
    self.snapshots.pop(ami.ebs_snapshot.id, None)
    ami.ebs_snapshot = None
    ami.root_device_type = "ebs"
    try:
        ami.amishare_mappings = [
            _resolve_mapping(self, ami.id, m) for m in block_device_mappings
        ]
    except Exception:
        self.amis.pop(ami.id, None)
        raise
    # Nothing else in moto reads ebs_snapshot; keep it pointing somewhere
    # sensible: the root volume's snapshot, else the first one.
    with_snapshot = [m for m in ami.amishare_mappings if m.get("snapshot")]
    root = [m for m in with_snapshot if m["DeviceName"] == ami.root_device_name]
    if root or with_snapshot:
        ami.ebs_snapshot = (root or with_snapshot)[0]["snapshot"]
    return ami


def _resolve_mapping(backend, ami_id, mapping):
    """Turns one requested mapping into what the Ami keeps."""
    kept = {"DeviceName": mapping.get("DeviceName")}
    if "VirtualName" in mapping:
        kept["VirtualName"] = mapping["VirtualName"]
    if "NoDevice" in mapping:
        kept["NoDevice"] = mapping["NoDevice"]
    ebs = mapping.get("Ebs")
    if ebs is None:
        return kept
    snapshot_id = ebs.get("SnapshotId")
    if snapshot_id:
        snapshot = backend.get_snapshot(snapshot_id)
        if not snapshot.from_ami:
            # Lets DeleteSnapshot answer InvalidSnapshot.InUse, as AWS does.
            snapshot.from_ami = ami_id
    else:
        volume = backend.create_volume(
            size=int(ebs.get("VolumeSize") or 8),
            zone_name=f"{backend.region_name}a",
            encrypted=bool(ebs.get("Encrypted", False)),
            kms_key_id=ebs.get("KmsKeyId"),
            volume_type=ebs.get("VolumeType"),
            iops=ebs.get("Iops"),
        )
        snapshot = backend.create_snapshot(
            volume.id, f"Created by RegisterImage for {ami_id}", from_ami=ami_id
        )
        backend.delete_volume(volume.id)
    kept["snapshot"] = snapshot
    kept["VolumeSize"] = int(ebs.get("VolumeSize") or snapshot.volume_size)
    kept["VolumeType"] = ebs.get("VolumeType") or "gp2"
    kept["DeleteOnTermination"] = bool(ebs.get("DeleteOnTermination", True))
    for key in ("Iops", "Throughput"):
        if ebs.get(key) is not None:
            kept[key] = ebs[key]
    return kept


def _block_device_mappings(self):
    mappings = getattr(self, "amishare_mappings", None)
    if mappings is None:
        return _stock_block_device_mappings.fget(self)
    out = []
    for m in mappings:
        rendered = {k: v for k, v in m.items() if k in ("DeviceName", "VirtualName", "NoDevice")}
        snapshot = m.get("snapshot")
        if snapshot is not None:
            ebs = {
                "SnapshotId": snapshot.id,
                "VolumeSize": m["VolumeSize"],
                "VolumeType": m["VolumeType"],
                "DeleteOnTermination": m["DeleteOnTermination"],
                "Encrypted": bool(snapshot.encrypted),
            }
            if snapshot.kms_key_id:
                ebs["KmsKeyId"] = snapshot.kms_key_id
            for key in ("Iops", "Throughput"):
                if key in m:
                    ebs[key] = m[key]
            rendered["Ebs"] = ebs
        out.append(rendered)
    return out


AmisResponse.register_image = _register_image_response
AmiBackend.register_image = _register_image
Ami.block_device_mappings = property(_block_device_mappings)


# --- Patch 2: snapshots and volumes keep their KMS key -----------------------
#
# moto: EBSBackend.create_snapshot copies the volume's `encrypted` flag but not
# its `kms_key_id`, so DescribeSnapshots shows Encrypted without a KmsKeyId.
# CreateVolume stores KmsKeyId exactly as sent (key id, alias or ARN).
# AWS: a snapshot is encrypted with its volume's key, and DescribeSnapshots and
# DescribeVolumes report KmsKeyId as the key's ARN.

_stock_create_snapshot = EBSBackend.create_snapshot
_stock_create_volume = EBSBackend.create_volume


def _key_arn(backend, kms_key_id):
    """Returns the ARN for any form of key reference moto's KMS knows."""
    from moto.kms.models import kms_backends

    kms = kms_backends[backend.account_id][backend.region_name]
    try:
        return kms.describe_key(kms_key_id).arn
    except Exception:
        # AWS accepts an unknown key here and fails later, asynchronously;
        # keep what the caller sent.
        return kms_key_id


def _create_volume(self, *args, **kwargs):
    volume = _stock_create_volume(self, *args, **kwargs)
    if volume.kms_key_id:
        volume.kms_key_id = _key_arn(self, volume.kms_key_id)
    return volume


def _create_snapshot(self, volume_id, *args, **kwargs):
    snapshot = _stock_create_snapshot(self, volume_id, *args, **kwargs)
    volume = self.get_volume(volume_id)
    if volume.encrypted and volume.kms_key_id and not snapshot.kms_key_id:
        snapshot.kms_key_id = volume.kms_key_id
    return snapshot


EBSBackend.create_volume = _create_volume
EBSBackend.create_snapshot = _create_snapshot


# --- Patch 3: AWS managed keys say so ----------------------------------------
#
# moto: Key.__init__ sets key_manager = "CUSTOMER" for every key, including the
# alias/aws/ebs key EBSBackend._create_default_encryption_key creates.
# AWS: keys behind an alias/aws/* alias are AWS managed keys, and DescribeKey
# reports KeyManager "AWS" for them. The alias is checked when the key is
# described, because moto creates the key before its alias.


def _get_key_manager(self):
    if any(name.startswith("alias/aws/") for name in getattr(self, "aliases", {})):
        return "AWS"
    return self.__dict__.get("_amishare_key_manager", "CUSTOMER")


def _set_key_manager(self, value):
    self.__dict__["_amishare_key_manager"] = value


Key.key_manager = property(_get_key_manager, _set_key_manager)


# --- Patch 4: unknown and deregistered image ids are client errors -----------
#
# moto: DescribeImageAttribute looks the id up with self.amis[ami_id] and
# ModifyImageAttribute takes describe_images(...)[0], so an unknown or
# deregistered id raises KeyError/IndexError: HTTP 500. DescribeImages only
# fails when none of the requested ids is known, and only checks the "ami-"
# prefix.
# AWS: HTTP 400 InvalidAMIID.NotFound for an id that does not exist (or no
# longer exists), InvalidAMIID.Malformed for an id that is not ami-<8 or 17
# hex digits>. DescribeImages fails if any requested id is unknown; ids of
# recently deregistered images are simply left out.

AMI_ID = re.compile(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")


def _check_image_id(backend, ami_id):
    if ami_id in backend.amis:
        return
    if not isinstance(ami_id, str) or not AMI_ID.match(ami_id):
        raise MalformedAMIIdError([ami_id])
    raise InvalidAMIIdError(ami_id)


_stock_describe_image_attribute = AmiBackend.describe_image_attribute
_stock_modify_image_attribute = AmiBackend.modify_image_attribute
_stock_describe_images = AmiBackend.describe_images


def _describe_image_attribute(self, ami_id, attribute_name):
    _check_image_id(self, ami_id)
    return _stock_describe_image_attribute(self, ami_id, attribute_name)


def _modify_image_attribute(self, ami_id, *args, **kwargs):
    _check_image_id(self, ami_id)
    return _stock_modify_image_attribute(self, ami_id, *args, **kwargs)


def _describe_images(self, ami_ids=None, *args, **kwargs):
    if ami_ids:
        unknown = [i for i in ami_ids if i not in self.amis and i not in self.deleted_amis]
        malformed = [i for i in unknown if not AMI_ID.match(i)]
        if malformed:
            raise MalformedAMIIdError(malformed)
        if unknown:
            raise InvalidAMIIdError(unknown)
    return _stock_describe_images(self, ami_ids, *args, **kwargs)


AmiBackend.describe_image_attribute = _describe_image_attribute
AmiBackend.modify_image_attribute = _modify_image_attribute
AmiBackend.describe_images = _describe_images


# --- Patch 5: ModifySnapshotAttribute's structured form ----------------------
#
# moto: ElasticBlockStore.modify_snapshot_attribute reads only OperationType +
# UserIds/GroupNames and silently ignores CreateVolumePermission.Add/Remove.
# AWS: both forms are documented; CreateVolumePermission={Add:[{UserId}|
# {Group}], Remove:[...]} adds and removes those entries.

_stock_modify_snapshot_attribute = ElasticBlockStore.modify_snapshot_attribute


def _modify_snapshot_attribute(self):
    permission = self._get_param("CreateVolumePermission") or {}
    if not permission or self._get_param("OperationType"):
        return _stock_modify_snapshot_attribute(self)
    snapshot_id = self._get_param("SnapshotId")
    self.error_on_dryrun()
    for entries, change in (
        (permission.get("Add") or [], self.ec2_backend.add_create_volume_permission),
        (permission.get("Remove") or [], self.ec2_backend.remove_create_volume_permission),
    ):
        user_ids = [e["UserId"] for e in entries if e.get("UserId")]
        groups = [e["Group"] for e in entries if e.get("Group")]
        if user_ids or groups:
            change(snapshot_id, user_ids=user_ids, groups=groups)
    return EmptyResult()


ElasticBlockStore.modify_snapshot_attribute = _modify_snapshot_attribute


# --- Patch 6: KMS key policy name is optional --------------------------------
#
# moto: GetKeyPolicy and PutKeyPolicy answer NotFoundException "No such policy
# exists" unless PolicyName is exactly "default".
# AWS: PolicyName is optional and defaults to "default" (the only name).

_stock_get_param_kms = KmsResponse._get_param


def _kms_get_param(self, param_name, if_none=None):
    value = _stock_get_param_kms(self, param_name, if_none)
    if param_name == "PolicyName" and value is None:
        return "default"
    return value


KmsResponse._get_param = _kms_get_param


# --- Patch 7: a key of another account, named by its ARN, obeys its key policy
#
# moto: KMS looks a key ARN up by its key id alone, ignoring the account in the
# ARN, so a call naming another account's key answers NotFoundException (or
# acts on a same-id key of the caller's account).
# AWS: a call naming another account's key by its key ARN reaches that key,
# for the operations KMS allows across accounts (CreateGrant, DescribeKey,
# ListGrants, RevokeGrant, RetireGrant and the cryptographic ones), and the
# key policy decides whether the caller may (the caller's own IAM policy must
# allow it too: not modelled here, amishare's recorded-calls check covers its
# roles). Any other operation, a key ARN naming no key, and a call the key
# policy does not allow answer AccessDeniedException. The key policy is
# evaluated by _policy_allows (below) with the caller's account, principal
# ARN (an assumed role's role ARN) and the request's kms: condition keys.

import copy
import fnmatch
import json

from moto.core.exceptions import JsonRESTError
from moto.moto_api._internal.models import MotoAPIBackend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

KMS_ARN = re.compile(r"^arn:[a-z0-9-]+:kms:([a-z0-9-]*):(\d{12}):(key|alias)/(.+)$")
CROSS_ACCOUNT_KMS = {
    "CreateGrant", "DescribeKey", "ListGrants", "RevokeGrant", "RetireGrant", "Decrypt", "Encrypt",
    "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncrypt",
}


def _kms_denied(self, action, resource, reason):
    return JsonRESTError(
        "AccessDeniedException",
        f"User: {_caller_arn(self)} is not authorized to perform: "
        f"kms:{action} on resource: {resource} because {reason}",
    )


def _caller_arn(self):
    """The caller's principal ARN: the role of assumed-role credentials, else the account's root."""
    from moto.sts.models import sts_backends

    try:
        role = sts_backends[self.current_account]["aws"].get_assumed_role_from_access_key(self.get_access_key())
    except Exception:
        role = None
    return role.role_arn if role else f"arn:aws:iam::{self.current_account}:root"


def _policy_allows(policy, action, ctx):
    """Whether a resource policy (a key policy, a role's trust policy) allows
    action for the request context ctx (aws:PrincipalAccount and
    aws:PrincipalArn always; lists are multivalued keys): an explicit Deny
    wins, else an Allow is needed. Only what amishare's policies use is
    modelled; a condition operator it does not know never matches."""
    doc = json.loads(policy) if isinstance(policy, str) else policy
    statements = doc.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for st in statements:
        if not _statement_applies(st, action, ctx):
            continue
        if st.get("Effect") == "Deny":
            return False
        allowed = allowed or st.get("Effect") == "Allow"
    return allowed


def _as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _statement_applies(st, action, ctx):
    principal = st.get("Principal")
    names = ["*"] if principal == "*" else _as_list((principal or {}).get("AWS"))
    account, arn = ctx["aws:PrincipalAccount"], ctx["aws:PrincipalArn"]
    if not any(n in ("*", account, arn, f"arn:aws:iam::{account}:root") for n in names):
        return False
    if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _as_list(st.get("Action"))):
        return False
    for op, keys in (st.get("Condition") or {}).items():
        for key, want in keys.items():
            if not _condition(op, [str(w) for w in _as_list(want)], _as_list(ctx.get(key))):
                return False
    return True


def _condition(op, want, got):
    qualifier, _, base = op.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base == "Null":
        return (want[0].lower() == "true") == (not got)
    negated = "Not" in base
    compare = {
        "StringEquals": lambda w, g: w == g, "ArnEquals": lambda w, g: w == g,
        "StringLike": lambda w, g: fnmatch.fnmatchcase(g, w), "ArnLike": lambda w, g: fnmatch.fnmatchcase(g, w),
        "Bool": lambda w, g: w.lower() == g.lower(),
    }.get(base.replace("Not", "", 1))
    if compare is None:
        return False
    if not got:
        return qualifier == "ForAllValues" or if_exists or (negated and not qualifier)

    def match(g):
        return any(compare(w, str(g)) for w in want) != negated

    if qualifier == "ForAllValues":
        return all(match(g) for g in got)
    return any(match(g) for g in got)


def _kms_context(self, key_account):
    ctx = {
        "aws:PrincipalAccount": self.current_account,
        "aws:PrincipalArn": _caller_arn(self),
        "kms:CallerAccount": self.current_account,
        "kms:GrantIsForAWSResource": "false",
    }
    if self._get_param("GranteePrincipal"):
        ctx["kms:GranteePrincipal"] = self._get_param("GranteePrincipal")
    if self._get_param("Operations"):
        ctx["kms:GrantOperations"] = list(self._get_param("Operations"))
    return ctx


def _kms_guard(name, method):
    action = "".join(part.capitalize() for part in name.split("_"))

    def guarded(self, *args, **kwargs):
        key_id = self._get_param("KeyId")
        if isinstance(key_id, str):
            match = KMS_ARN.match(key_id)
            if match and match.group(2) != self.current_account:
                return _foreign_key_call(self, action, key_id, match, method, args, kwargs)
            _check_delegated(self, action, key_id)
        return method(self, *args, **kwargs)

    guarded.__name__ = name
    return guarded


def _foreign_key_call(self, action, key_arn, match, method, args, kwargs):
    from moto.kms.models import kms_backends

    region, owner, kind, key_id = match.groups()
    key = kms_backends[owner][self.region].keys.get(key_id) if kind == "key" and region == self.region else None
    if action not in CROSS_ACCOUNT_KMS or key is None:
        raise _kms_denied(self, action, key_arn, "no resource-based policy allows it")
    if not _policy_allows(key.policy, f"kms:{action}", _kms_context(self, owner)):
        raise _kms_denied(self, action, key_arn, "the key policy does not allow it")
    caller, self.current_account = self.current_account, owner
    try:
        return method(self, *args, **kwargs)
    finally:
        self.current_account = caller


# --- Patch 8 (test control): keys not delegated to amishare are refused ------
#
# moto: enforces no IAM policy at all.
# AWS: amishare's role (stack parameter DelegatedKeysOnly=true, the default)
# allows PutKeyPolicy, CreateGrant and RevokeGrant only on keys tagged
# amishare:managed=true (condition aws:ResourceTag/amishare:managed), so on any
# other key of the account they answer AccessDeniedException. A test turns
# this on with POST /amishare-test/delegated-keys-only (body "true" or
# "false"); it is off after start and after every /moto-api/reset.

DELEGATED_ACTIONS = {"PutKeyPolicy", "CreateGrant", "RevokeGrant"}
DELEGATION_TAG = ("amishare:managed", "true")
_delegated_keys_only = {"on": False}


def _check_delegated(self, action, key_id):
    if not _delegated_keys_only["on"] or action not in DELEGATED_ACTIONS:
        return
    backend = self.kms_backend
    try:
        raw_id = backend.any_id_to_key_id(key_id)
    except Exception:
        return  # unknown key: moto's own NotFoundException follows
    if raw_id not in backend.keys:
        return
    tags = backend.list_resource_tags(raw_id).get("Tags", [])
    if {"TagKey": DELEGATION_TAG[0], "TagValue": DELEGATION_TAG[1]} not in tags:
        raise _kms_denied(
            self, action, backend.keys[raw_id].arn,
            f"no identity-based policy allows the kms:{action} action",
        )


for _name, _method in list(vars(KmsResponse).items()):
    if callable(_method) and not _name.startswith("_") and _name not in ("kms_backend",):
        setattr(KmsResponse, _name, _kms_guard(_name, _method))

_stock_dispatch = DomainDispatcherApplication.__call__

# Test switches: POST /amishare-test/NAME with body "true" or "false". Each
# is off after start and after every /moto-api/reset.
_switches = {"delegated-keys-only": _delegated_keys_only}
# Test controls: POST /amishare-test/NAME with a body the control reads; each
# returns (HTTP status, text).
_controls = {}
CONTROL_PREFIX = "/amishare-test/"


def _dispatch(self, environ, start_response):
    path = environ.get("PATH_INFO") or ""
    if path.startswith(CONTROL_PREFIX) and environ.get("REQUEST_METHOD") == "POST":
        name = path[len(CONTROL_PREFIX):]
        switch = _switches.get(name)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length).decode().strip()
        if name in _controls:
            status, text = _controls[name](body)
            start_response(status, [("Content-Type", "text/plain")])
            return [text.encode() + b"\n"]
        if switch is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no such switch\n"]
        if body not in ("true", "false"):
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b'body must be "true" or "false"\n']
        switch["on"] = body == "true"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body.encode() + b"\n"]
    return _stock_dispatch(self, environ, start_response)


_stock_reset = MotoAPIBackend.reset


def _reset(self):
    for switch in _switches.values():
        switch["on"] = False
    _block_public_access.clear()
    return _stock_reset(self)


DomainDispatcherApplication.__call__ = _dispatch
MotoAPIBackend.reset = _reset


# --- Patch 9: block public access states for AMIs and snapshots --------------
#
# moto: has no GetImageBlockPublicAccessState, GetSnapshotBlockPublicAccessState
# or their Enable/Disable calls (the action is unknown).
# AWS: each account and region has an image state ("unblocked" or
# "block-new-sharing") and a snapshot state ("unblocked", "block-new-sharing"
# or "block-all-sharing"), both "unblocked" until enabled. (Here the states are
# only stored and reported; sharing is not refused because of them.)

from moto.ec2.responses import EC2Response

_block_public_access = {}


def _bpa(self):
    return _block_public_access.setdefault(
        (self.current_account, self.region), {"image": "unblocked", "snapshot": "unblocked"}
    )


def _get_image_bpa(self):
    self.error_on_dryrun()
    return ActionResult({"ImageBlockPublicAccessState": _bpa(self)["image"], "ManagedBy": "account"})


def _enable_image_bpa(self):
    self.error_on_dryrun()
    _bpa(self)["image"] = self._get_param("ImageBlockPublicAccessState") or "block-new-sharing"
    return ActionResult({"ImageBlockPublicAccessState": _bpa(self)["image"]})


def _disable_image_bpa(self):
    self.error_on_dryrun()
    _bpa(self)["image"] = "unblocked"
    return ActionResult({"ImageBlockPublicAccessState": "unblocked"})


def _get_snapshot_bpa(self):
    self.error_on_dryrun()
    return ActionResult({"State": _bpa(self)["snapshot"], "ManagedBy": "account"})


def _enable_snapshot_bpa(self):
    self.error_on_dryrun()
    _bpa(self)["snapshot"] = self._get_param("State") or "block-all-sharing"
    return ActionResult({"State": _bpa(self)["snapshot"]})


def _disable_snapshot_bpa(self):
    self.error_on_dryrun()
    _bpa(self)["snapshot"] = "unblocked"
    return ActionResult({"State": "unblocked"})


EC2Response.get_image_block_public_access_state = _get_image_bpa
EC2Response.enable_image_block_public_access = _enable_image_bpa
EC2Response.disable_image_block_public_access = _disable_image_bpa
EC2Response.get_snapshot_block_public_access_state = _get_snapshot_bpa
EC2Response.enable_snapshot_block_public_access = _enable_snapshot_bpa
EC2Response.disable_snapshot_block_public_access = _disable_snapshot_bpa


# --- Patch 10: CopyImage copies what AWS copies -------------------------------
#
# moto: AmisResponse.copy_image reads only SourceImageId, SourceRegion, Name
# and Description. Encrypted, KmsKeyId, ClientToken, TagSpecifications and
# CopyImageTags are ignored, and the copy invents one unencrypted 15 GiB
# snapshot instead of copying the source's.
# AWS: every backing snapshot of the source is copied into the destination
# Region (the one the request is sent to), keeping its device mapping. With
# Encrypted=true every copy is encrypted with KmsKeyId (key id, alias or ARN,
# which must be a key of the destination Region) or, without one, with the
# destination's default EBS key; KmsKeyId without Encrypted is
# InvalidParameterCombination. Without Encrypted an encrypted snapshot stays
# encrypted: with the same key within a Region, with the destination's default
# key across Regions. A KmsKeyId that names no key is only noticed
# asynchronously: the call returns an image id and the image becomes
# "failed". ClientToken makes the call idempotent: the same token returns the
# image of the first call. TagSpecifications tag the new image (ResourceType
# image) and/or all its new snapshots (snapshot); any other ResourceType is
# InvalidParameterValue. CopyImageTags=true also copies the source's
# user-defined tags (not aws:*). Copies, like every image in moto, are
# "available" at once (AWS: "pending" first, then an AMI State Change event).

_copy_lock = threading.Lock()
_copy_tokens = {}  # (account, region, client token) -> image id


def _copy_image_response(self):
    self.error_on_dryrun()
    image = _copy_image(
        self.ec2_backend,
        source_image_id=self._get_param("SourceImageId"),
        source_region=self._get_param("SourceRegion"),
        name=self._get_param("Name"),
        description=self._get_param("Description"),
        encrypted=str(self._get_param("Encrypted", "false")).lower() == "true",
        kms_key_id=self._get_param("KmsKeyId"),
        client_token=self._get_param("ClientToken"),
        tag_specifications=self._get_param("TagSpecifications", []),
        copy_image_tags=str(self._get_param("CopyImageTags", "false")).lower() == "true",
    )
    return ActionResult({"ImageId": image.id})


def _known_key_arn(backend, kms_key_id):
    """Returns the ARN of a key of the backend's Region, or None."""
    from moto.kms.models import kms_backends

    try:
        return kms_backends[backend.account_id][backend.region_name].describe_key(kms_key_id).arn
    except Exception:
        return None


def _copy_image(backend, source_image_id, source_region, name, description, encrypted,
                kms_key_id, client_token, tag_specifications, copy_image_tags):
    from moto.ec2.exceptions import InvalidParameterCombination, InvalidParameterValueError
    from moto.ec2.models import ec2_backends
    from moto.ec2.utils import random_ami_id

    if kms_key_id and not encrypted:
        raise InvalidParameterCombination("KmsKeyId requires Encrypted to be true")
    image_tags, snapshot_tags = {}, {}
    for spec in tag_specifications or []:
        kind = spec.get("ResourceType")
        if kind not in ("image", "snapshot"):
            raise InvalidParameterValueError(str(kind))
        target = image_tags if kind == "image" else snapshot_tags
        for tag in spec.get("Tags") or []:
            target[tag["Key"]] = tag.get("Value", "")

    with _copy_lock:
        token_key = (backend.account_id, backend.region_name, client_token)
        if client_token and token_key in _copy_tokens and _copy_tokens[token_key] in backend.amis:
            return backend.amis[_copy_tokens[token_key]]

        source_backend = ec2_backends[backend.account_id][source_region or backend.region_name]
        _check_image_id(source_backend, source_image_id)
        source = source_backend.amis[source_image_id]
        key_arn, failed = None, False
        if encrypted and kms_key_id:
            key_arn = _known_key_arn(backend, kms_key_id)
            failed = key_arn is None
        ami_id = random_ami_id()
        ami = Ami(backend, ami_id, source_ami=source, name=name, description=description)
        # Drop the snapshot stock Ami.__init__ invented: the copies replace it.
        backend.snapshots.pop(ami.ebs_snapshot.id, None)
        ami.ebs_snapshot = None
        ami.root_device_name = source.root_device_name
        ami.root_device_type = source.root_device_type
        mappings = []
        for m in source.block_device_mappings:
            kept = {k: v for k, v in m.items() if k in ("DeviceName", "VirtualName", "NoDevice")}
            ebs = m.get("Ebs")
            if ebs and ebs.get("SnapshotId") and not failed:
                src_snap = source_backend.get_snapshot(ebs["SnapshotId"])
                enc = bool(encrypted or src_snap.encrypted)
                key = None
                if encrypted:
                    key = key_arn  # None: the destination's default key
                elif src_snap.encrypted and source_backend is backend:
                    key = src_snap.kms_key_id
                volume = backend.create_volume(
                    size=int(ebs.get("VolumeSize") or src_snap.volume_size),
                    zone_name=f"{backend.region_name}a", encrypted=enc, kms_key_id=key,
                )
                snap = backend.create_snapshot(
                    volume.id, f"Copied for DestinationAmi {ami_id} from SourceAmi {source_image_id}",
                    from_ami=ami_id,
                )
                backend.delete_volume(volume.id)
                for k, v in snapshot_tags.items():
                    snap.add_tag(k, v)
                kept["snapshot"] = snap
                kept["VolumeSize"] = int(ebs.get("VolumeSize") or snap.volume_size)
                kept["VolumeType"] = ebs.get("VolumeType") or "gp2"
                kept["DeleteOnTermination"] = bool(ebs.get("DeleteOnTermination", True))
            mappings.append(kept)
        ami.amishare_mappings = mappings
        with_snapshot = [m for m in mappings if m.get("snapshot")]
        if with_snapshot:
            ami.ebs_snapshot = with_snapshot[0]["snapshot"]
        if failed:
            ami.state = "failed"
            ami.state_reason = {"Code": "Client.InvalidKMSKey.InvalidState", "Message": f"KMS key {kms_key_id} is not valid"}
        if copy_image_tags:
            for tag in source_backend.describe_tags(filters={"resource-id": [source_image_id]}):
                if not tag["key"].startswith("aws:"):
                    ami.add_tag(tag["key"], tag["value"])
        for k, v in image_tags.items():
            ami.add_tag(k, v)
        backend.amis[ami_id] = ami
        if client_token:
            _copy_tokens[token_key] = ami_id
        return ami


AmisResponse.copy_image = _copy_image_response


# --- Serving -----------------------------------------------------------------


def _answers(url):
    try:
        with urllib.request.urlopen(url + "/moto-api/config", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


# --- Patch 11: ResetImageAttribute -------------------------------------------
#
# moto: AmisResponse.reset_image_attribute raises NotImplementedError (HTTP
# 500).
# AWS: ResetImageAttribute with Attribute=launchPermission (the only one it
# resets) removes every launch permission of the image: accounts, the public
# group, organizations and OUs (the EC2 User Guide gives it as the way "to
# stop sharing an AMI with all organizations, OUs, and AWS accounts"). AWS's
# API reference does not say so for organizations and OUs; a test that wants
# a reset which leaves them turns on POST /amishare-test/reset-keeps-organizations.

_reset_keeps_organizations = {"on": False}
_switches["reset-keeps-organizations"] = _reset_keeps_organizations


def _reset_image_attribute(self):
    ami_id = self._get_param("ImageId")
    attribute = self._get_param("Attribute")
    self.error_on_dryrun()
    _check_image_id(self.ec2_backend, ami_id)
    if attribute != "launchPermission":
        from moto.ec2.exceptions import InvalidParameterValueError

        raise InvalidParameterValueError(attribute)
    ami = self.ec2_backend.amis[ami_id]
    if _reset_keeps_organizations["on"]:
        ami.launch_permissions = [
            lp for lp in ami.launch_permissions if lp.get("OrganizationArn") or lp.get("OrganizationalUnitArn")
        ]
    else:
        ami.launch_permissions = []
    return EmptyResult()


AmisResponse.reset_image_attribute = _reset_image_attribute


# --- Patch 12: DisableImage and EnableImage -----------------------------------
#
# moto: has no DisableImage or EnableImage (unknown actions), so no image is
# ever disabled, and DescribeImages ignores IncludeDisabled.
# AWS: DisableImage sets the image's state to disabled and removes every
# launch permission; EnableImage sets it to available again and restores
# none. DescribeImages leaves disabled images out unless IncludeDisabled is
# true.


def _disable_image(self):
    ami_id = self._get_param("ImageId")
    self.error_on_dryrun()
    _check_image_id(self.ec2_backend, ami_id)
    ami = self.ec2_backend.amis[ami_id]
    ami.state = "disabled"
    ami.launch_permissions = []
    return ActionResult({"Return": True})


def _enable_image(self):
    ami_id = self._get_param("ImageId")
    self.error_on_dryrun()
    _check_image_id(self.ec2_backend, ami_id)
    self.ec2_backend.amis[ami_id].state = "available"
    return ActionResult({"Return": True})


def _describe_images_response(self):
    self.error_on_dryrun()
    images = self.ec2_backend.describe_images(
        ami_ids=self._get_param("ImageIds", []),
        filters=self._filters_from_querystring(),
        exec_users=self._get_param("ExecutableUsers", []),
        owners=self._get_param("Owners", []),
    )
    if str(self._get_param("IncludeDisabled")).lower() != "true":
        images = [i for i in images if getattr(i, "state", "") != "disabled"]
    return ActionResult({"Images": images})


EC2Response.disable_image = _disable_image
EC2Response.enable_image = _enable_image
AmisResponse.describe_images = _describe_images_response



# --- Patch 13: DeleteTags without tags deletes every tag ---------------------
#
# moto: TagBackend.delete_tags deletes only the tags it is given, so a
# DeleteTags without Tags deletes nothing.
# AWS: "If you omit this parameter, we delete all user-defined tags for the
# specified resources" (DeleteTags, Tags); tags whose keys begin with aws:
# are not user-defined and stay.

from moto.ec2.models.tags import TagBackend

_stock_delete_tags = TagBackend.delete_tags


def _delete_tags(self, resource_ids, tags):
    if not tags:
        for resource_id in resource_ids:
            for key in [k for k in self.tags.get(resource_id, {}) if not k.startswith("aws:")]:
                self.tags[resource_id].pop(key)
        return True
    return _stock_delete_tags(self, resource_ids, tags)


TagBackend.delete_tags = _delete_tags


# --- Patch 14: SSM validates aws:ec2:image values asynchronously -------------
#
# moto: PutParameter with DataType aws:ec2:image stores any value at once.
# AWS: "PutParameter returns before the validation is complete": the call
# answers 200 with a version, and the parameter is created or updated only
# if the value names an AMI that is available and that the writing account
# may describe in that Region (its own, or one shared with it); otherwise it
# keeps its old value (a new one stays ParameterNotFound). Here validation
# completes at once unless a test turns on
# POST /amishare-test/ssm-image-validation-pending, which leaves every such
# write unapplied, as while AWS is still validating.

from types import SimpleNamespace

from moto.ssm.models import SimpleSystemManagerBackend

_ssm_image_pending = {"on": False}
_switches["ssm-image-validation-pending"] = _ssm_image_pending
_stock_put_parameter = SimpleSystemManagerBackend.put_parameter


def _image_visible(account, region, image_id):
    """Whether account may describe image_id in region: its own, or shared
    with it by account id, and available."""
    from moto.ec2.models import ec2_backends

    for owner in list(ec2_backends.keys()):
        ami = ec2_backends[owner][region].amis.get(image_id) if region in ec2_backends[owner].regions else None
        if ami is None:
            continue
        shared = owner == account or {"UserId": account} in ami.launch_permissions or ami.is_public
        return shared and ami.state == "available"
    return False


def _put_parameter(self, name, description, value, parameter_type, allowed_pattern, keyid, overwrite, tags,
                   data_type, tier=None, policies=None):
    if data_type == "aws:ec2:image" and (
        _ssm_image_pending["on"] or not _image_visible(self.account_id, self.region_name, value)
    ):
        versions = self._parameters[name] if name in self._parameters else []
        if versions and not overwrite:
            from moto.ssm.exceptions import ParameterAlreadyExists

            raise ParameterAlreadyExists
        last = versions[-1] if versions else None
        return SimpleNamespace(version=(last.version if last else 0) + 1, tier=tier or (last.tier if last else "Standard"))
    return _stock_put_parameter(self, name, description, value, parameter_type, allowed_pattern, keyid, overwrite,
                                tags, data_type, tier=tier, policies=policies)


SimpleSystemManagerBackend.put_parameter = _put_parameter


# --- Patch 15: an image shared with an account is visible to it, with its own tags
#
# moto: each account sees only the images it owns: DescribeImages and
# CreateTags in another account answer InvalidAMIID.NotFound for an image
# shared with it.
# AWS: an account describes the images shared with it by account id
# (ImageIds, Owners naming the owner, ExecutableUsers self), and may tag
# them; those tags are private to it: the owner never sees them, and the
# account never sees the owner's ("The tags you add are visible only to your
# account").


def _shared_with(backend):
    """The images of other accounts in the backend's region shared with its
    account by account id, each seen with that account's own tags."""
    from moto.ec2.models import ec2_backends

    out = {}
    me = backend.account_id
    for owner in list(ec2_backends.keys()):
        if owner == me or backend.region_name not in ec2_backends[owner].regions:
            continue
        for ami in list(ec2_backends[owner][backend.region_name].amis.values()):
            if {"UserId": me} in ami.launch_permissions:
                seen = copy.copy(ami)
                seen.ec2_backend = backend  # its tags are this account's
                out[ami.id] = seen
    return out


_own_describe_images = AmiBackend.describe_images  # Patch 4's


def _describe_shared_images(self, ami_ids=None, filters=None, exec_users=None, owners=None):
    shared = _shared_with(self)
    wanted = [self.account_id if o == "self" else o for o in owners or []]
    if ami_ids:
        theirs = [i for i in ami_ids if i in shared and i not in self.amis and i not in self.deleted_amis]
        own = [i for i in ami_ids if i not in theirs]
        images = _own_describe_images(self, own, filters, exec_users, owners) if own else []
        return images + [shared[i] for i in theirs if not wanted or shared[i].owner_id in wanted]
    images = _own_describe_images(self, None, filters, exec_users, owners)
    extra = [img for img in shared.values() if not wanted or img.owner_id in wanted]
    if filters:
        from moto.ec2.utils import generic_filter

        extra = generic_filter(filters, extra)
    return images + extra


AmiBackend.describe_images = _describe_shared_images


# --- Patch 16: AssumeRole needs the role, and its trust policy decides ------
#
# moto: STS AssumeRole returns credentials for any role ARN, whether the role
# exists or not, and evaluates no trust policy.
# AWS: AssumeRole of a role that does not exist, or whose trust policy does
# not allow the caller (its account, principal ARN, the session name, ...),
# answers AccessDenied ("... is not authorized to perform: sts:AssumeRole on
# resource: ..."). The trust policy is evaluated by _policy_allows (Patch 7)
# with aws:PrincipalAccount, aws:PrincipalArn and sts:RoleSessionName.

from moto.iam.models import iam_backends
from moto.sts.exceptions import STSClientError
from moto.sts.responses import TokenResponse

_stock_assume_role = TokenResponse.assume_role


def _assume_role(self):
    role_arn = self._get_param("RoleArn") or ""
    match = re.match(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(.+)$", role_arn)
    role = None
    if match:
        try:
            role = iam_backends[match.group(1)]["aws"].get_role_by_arn(role_arn)
        except Exception:
            role = None
    ctx = {
        "aws:PrincipalAccount": self.current_account,
        "aws:PrincipalArn": _caller_arn(self),
        "sts:RoleSessionName": self._get_param("RoleSessionName") or "",
    }
    if role is None or not _policy_allows(role.assume_role_policy_document, "sts:AssumeRole", ctx):
        raise STSClientError("AccessDenied", f"User: {ctx['aws:PrincipalArn']} is not authorized to perform: sts:AssumeRole on resource: {role_arn}")
    return _stock_assume_role(self)


TokenResponse.assume_role = _assume_role


# --- Patch 17 (test control): an image's creation date -----------------------
#
# moto: an image's CreationDate is the second it was registered, as in AWS.
# Tests that order images by age set it: POST /amishare-test/creation-date
# with the body "IMAGE_ID DATE" (DATE as DescribeImages reports it,
# 2024-05-14T09:20:01.000Z).


def _set_creation_date(body):
    from moto.core.parse import default_timestamp_parser
    from moto.ec2.models import ec2_backends

    image_id, _, date = body.partition(" ")
    for owner in list(ec2_backends.keys()):
        for region in ec2_backends[owner].regions:
            ami = ec2_backends[owner][region].amis.get(image_id)
            if ami is not None:
                ami.creation_date = default_timestamp_parser(date.strip())
                return "200 OK", image_id
    return "404 Not Found", f"no image {image_id}"


_controls["creation-date"] = _set_creation_date


# --- Patch 18: a tag-key or tag-value filter matches any of a resource's tags
#
# moto: generic_filter compares a resource's tag keys (or values) with a
# filter's values as sets: with several values it matches only a resource
# whose keys are all among them, or include them all, so tag-key =
# [amishare:accounts, amishare:status] misses an image that also carries a
# Name or team tag.
# AWS: "If you specify multiple values for a filter, the values are joined
# with an OR": a resource matches when any of its tag keys (values) matches
# any of the filter's values (* and ? wildcards).

import moto.ec2.utils as _ec2_utils

_stock_is_filter_matching = _ec2_utils.is_filter_matching


def _is_filter_matching(obj, _filter, filter_value):
    if _filter in ("tag-key", "tag-value") and filter_value is not None:
        values = filter_value if isinstance(filter_value, list) else [filter_value]
        return any(fnmatch.fnmatch(str(element), pattern) for element in obj.get_filter_value(_filter) or [] for pattern in values)
    return _stock_is_filter_matching(obj, _filter, filter_value)


_ec2_utils.is_filter_matching = _is_filter_matching



def _stop_on_signal(signum, frame):
    raise SystemExit(0)


def _watch_stdin():
    # os.read on the raw descriptor: a daemon thread blocked inside
    # sys.stdin's buffered reader makes interpreter shutdown abort.
    try:
        while os.read(0, 4096):
            pass
    finally:
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument(
        "--watch-stdin", action="store_true",
        help="exit when stdin is closed (the parent process went away)",
    )
    args = parser.parse_args(argv)
    if args.host in ("0.0.0.0", "::", ""):
        parser.error("refusing to bind every interface; give a loopback address")
    if moto.__version__ != MOTO_VERSION:
        print(
            f"launcher: warning: moto {moto.__version__} found, patches are for "
            f"{MOTO_VERSION}; {INSTALL_HINT}",
            file=sys.stderr,
        )

    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)

    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # moto builds some URLs (SQS queue URLs, Lambda env) from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)
    url_host = f"[{host}]" if ":" in host else host
    url = f"http://{url_host}:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):
            if time.monotonic() > deadline:
                print(f"launcher: {url} does not answer", file=sys.stderr)
                return 1
            time.sleep(0.05)
        print(f"READY {url}", flush=True)
        if args.watch_stdin:
            threading.Thread(target=_watch_stdin, daemon=True).start()
        while True:
            time.sleep(3600)
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
