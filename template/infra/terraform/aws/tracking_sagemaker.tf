# tracking_server = managed: SageMaker's managed MLflow tracking server (and model registry) for this environment.
#
# AWS runs the server; its artefacts go to the models bucket under mlflow/ (the project's KMS key encrypts them).
# Clients authenticate with their AWS identity, not a token: the `sagemaker-mlflow` plugin (pip install
# sagemaker-mlflow) signs every MLflow request with SigV4, and the tracking URI is the server's ARN. CI assumes its
# role through GitHub OIDC as for any AWS call (identity.tf), so no MLflow secret exists anywhere; the roles below
# grant the MLflow data plane on this server only, and the artefact prefix (clients read and write artefacts in S3
# directly with their own identity).
#
# Nothing is created when var.tracking_server_url names an existing server (the ARN of the organisation's managed
# server, or an https URL of a self-hosted one).

variable "tracking_server_url" {
  description = "The organisation's existing MLflow server: the ARN of a SageMaker managed tracking server, or an https URL. Set, this stack creates none. \"\": the stack creates its own."
  type        = string
  default     = ""

  validation {
    condition     = var.tracking_server_url == "" || can(regex("^(https://[^/\\s]+(/.*)?|arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:mlflow-tracking-server/[A-Za-z0-9-]+)$", var.tracking_server_url))
    error_message = "tracking_server_url must be a SageMaker MLflow tracking server ARN or an https:// URL (or \"\" to create the server)."
  }
}

variable "tracking_server_size" {
  description = "Size of the managed tracking server: Small (up to about 25 users), Medium or Large."
  type        = string
  default     = "Small"

  validation {
    condition     = contains(["Small", "Medium", "Large"], var.tracking_server_size)
    error_message = "tracking_server_size must be Small, Medium or Large."
  }
}

variable "tracking_mlflow_version" {
  description = "MLflow version of the managed server (one SageMaker offers; clients should use the same minor version)."
  type        = string
  default     = "2.16"
}

locals {
  tracking_create        = var.tracking_server_url == ""
  tracking_count         = local.tracking_create ? 1 : 0
  tracking_name          = "${local.name}-mlflow"
  tracking_models_bucket = "arn:${local.partition}:s3:::${local.buckets["models"]}"
  tracking_artifact_root = "s3://${local.buckets["models"]}/mlflow"
  tracking_uri           = local.tracking_create ? aws_sagemaker_mlflow_tracking_server.main[0].arn : var.tracking_server_url
  # SigV4 needs no token audience; kept as an output so every cloud's module offers the same interface.
  tracking_audience = ""
  # The CI roles that call MLflow: the environment's and, where this stack has it, main's.
  tracking_client_roles = merge({ ci = aws_iam_role.ci.id }, var.create_main_branch_role ? { ci-main = aws_iam_role.ci_main[0].id } : {})
}

resource "aws_sagemaker_mlflow_tracking_server" "main" {
  count = local.tracking_count

  tracking_server_name         = local.tracking_name
  role_arn                     = aws_iam_role.tracking[0].arn
  artifact_store_uri           = local.tracking_artifact_root
  tracking_server_size         = var.tracking_server_size
  mlflow_version               = var.tracking_mlflow_version
  automatic_model_registration = false
  # Maintenance once a week, at night (UTC).
  weekly_maintenance_window_start = "Sun:02:00"

  depends_on = [aws_s3_bucket.project, aws_iam_role_policy.tracking]
}

# The server's own role: the artefact prefix of the models bucket, nothing else.
resource "aws_iam_role" "tracking" {
  count = local.tracking_count

  name                 = "${local.name}-mlflow"
  assume_role_policy   = data.aws_iam_policy_document.tracking_trust.json
  permissions_boundary = aws_iam_policy.boundary.arn
}

data "aws_iam_policy_document" "tracking_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role_policy" "tracking" {
  count = local.tracking_count

  name   = "artefact-store"
  role   = aws_iam_role.tracking[0].id
  policy = data.aws_iam_policy_document.tracking_artifacts.json
}

data "aws_iam_policy_document" "tracking_artifacts" {
  statement {
    sid       = "ListArtefactPrefix"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [local.tracking_models_bucket]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["mlflow", "mlflow/*"]
    }
  }

  statement {
    sid       = "ReadWriteArtefacts"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.tracking_models_bucket}/mlflow/*"]
  }

  statement {
    sid       = "EncryptDecryptArtefacts"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

# CI: the MLflow data plane of this server (SigV4) and the artefact prefix, on the roles GitHub's OIDC token assumes.
resource "aws_iam_role_policy" "ci_tracking" {
  for_each = local.tracking_create ? local.tracking_client_roles : {}

  name   = "mlflow-tracking"
  role   = each.value
  policy = data.aws_iam_policy_document.ci_tracking.json
}

data "aws_iam_policy_document" "ci_tracking" {
  statement {
    sid       = "UseTheTrackingServer"
    actions   = ["sagemaker-mlflow:*"]
    resources = ["arn:${local.partition}:sagemaker:${var.region}:${local.account_id}:mlflow-tracking-server/${local.tracking_name}"]
  }

  statement {
    sid       = "ArtefactPrefix"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${local.tracking_models_bucket}/mlflow/*"]
  }

  statement {
    sid       = "ListArtefactPrefix"
    actions   = ["s3:ListBucket"]
    resources = [local.tracking_models_bucket]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["mlflow", "mlflow/*"]
    }
  }
}

output "tracking_uri" {
  description = "MLFLOW_TRACKING_URI of every client: the tracking server's ARN (the sagemaker-mlflow plugin resolves and signs it)."
  value       = local.tracking_uri
}

output "tracking_audience" {
  description = "Always \"\": clients sign with SigV4 (their AWS role), there is no token audience."
  value       = local.tracking_audience
}

output "tracking_artifact_root" {
  description = "Where the managed server keeps artefacts (the models bucket's mlflow/ prefix)."
  value       = local.tracking_create ? local.tracking_artifact_root : ""
}
