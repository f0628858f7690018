"""cdk-nag acknowledgements: one rule (or one finding), on one construct, with its reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct

#: The wildcard actions of CDK's ``Bucket.grant_read`` / ``grant_read_write``.
_S3_READ_ACTIONS = ("s3:GetBucket*", "s3:GetObject*", "s3:List*")
_S3_WRITE_ACTIONS = ("s3:Abort*", "s3:DeleteObject*")


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge ``rule_id`` (e.g. ``AwsSolutions-IAM5[Resource::*]``) on ``scope``.

    The acknowledgement covers ``scope`` and its children. The reason must say why the
    finding is acceptable *here*.
    """
    if len(reason) < 20:
        raise ValueError(f"acknowledging {rule_id} needs a specific reason, got {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def arn_finding(scope: IConstruct, arn: str) -> str:
    """How cdk-nag prints ``arn`` in a finding id: ``<LogicalId.Arn>`` or a literal ARN."""
    resolved = Stack.of(scope).resolve(arn)
    if isinstance(resolved, str):
        return resolved
    if isinstance(resolved, dict) and "Fn::GetAtt" in resolved:
        logical_id, attribute = resolved["Fn::GetAtt"]
        return f"<{logical_id}.{attribute}>"
    if isinstance(resolved, dict) and "Ref" in resolved:
        return f"<{resolved['Ref']}>"
    if isinstance(resolved, dict) and "Fn::Join" in resolved:
        separator, parts = resolved["Fn::Join"]
        return str(separator).join(_part_finding(part, resolved) for part in parts)
    raise ValueError(f"cannot name {resolved!r} the way cdk-nag does")


def _part_finding(part: object, whole: object) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, dict) and "Ref" in part:
        return f"<{part['Ref']}>"
    if isinstance(part, dict) and "Fn::GetAtt" in part:
        logical_id, attribute = part["Fn::GetAtt"]
        return f"<{logical_id}.{attribute}>"
    raise ValueError(f"cannot name {whole!r} the way cdk-nag does")


def acknowledge_bucket_grant(
    scope: IConstruct, *, bucket_arn: str, key_pattern: str, write: bool, why: str
) -> None:
    """Acknowledge the IAM5 findings of a CDK ``grant_read``/``grant_read_write`` on a bucket.

    CDK's bucket grants name action families (``s3:GetObject*``: the object, its ACL,
    tags, versions) and object ARNs ``<bucket>/<key_pattern>``; none is ``s3:*``.
    """
    actions = _S3_READ_ACTIONS + (_S3_WRITE_ACTIONS if write else ())
    for action in actions:
        acknowledge(
            scope,
            f"AwsSolutions-IAM5[Action::{action}]",
            f"CDK's bucket grant action family {action}, scoped to one bucket: {why}",
        )
    acknowledge(
        scope,
        f"AwsSolutions-IAM5[Resource::{arn_finding(scope, bucket_arn)}/{key_pattern}]",
        f"object ARNs under {key_pattern!r} of one bucket: {why}",
    )
