# orchestrator = kubeflow: the pipeline's pods on the Kubeflow Pipelines installation of the organisation's EKS
# cluster (README.md, "Running on Kubeflow"). The cluster and Kubeflow are the organisation's; this project owns
# the IAM role its pipeline pods assume through IRSA: the run store (the pipeline/ prefix of the data bucket) and the
# project key through S3, nothing else. The role trusts the cluster's IAM OIDC provider, given as variables (the
# cluster need not be this project's serving cluster), and only the service account of the pipeline's profile:
# system:serviceaccount:<kubeflow_namespace>:<project>-pipeline. The profile (namespace) and that service account,
# annotated with this role's ARN, are Kubernetes objects a cluster admin applies from
# orchestration/kubeflow/profile.yaml: Kubeflow's Profile controller owns the namespace, so Terraform does not.
# Image pulls on EKS use the nodes' role, not the pod's: the node role needs pull access to the project repository.

variable "kubeflow_oidc_provider_arn" {
  description = "ARN of the IAM OIDC provider of the EKS cluster Kubeflow Pipelines runs on (empty: no pipeline role yet)."
  type        = string
  default     = ""

  validation {
    condition     = var.kubeflow_oidc_provider_arn == "" || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+$", var.kubeflow_oidc_provider_arn))
    error_message = "kubeflow_oidc_provider_arn must be an IAM OIDC provider ARN (arn:aws:iam::<account>:oidc-provider/<issuer>)."
  }
}

variable "kubeflow_namespace" {
  description = "The Kubeflow profile (namespace) the pipeline runs in; empty: <project>-<environment>-pipeline."
  type        = string
  default     = ""
}

locals {
  kubeflow_enabled         = var.kubeflow_oidc_provider_arn != ""
  kubeflow_oidc_issuer     = local.kubeflow_enabled ? split("oidc-provider/", var.kubeflow_oidc_provider_arn)[1] : ""
  kubeflow_namespace       = var.kubeflow_namespace != "" ? var.kubeflow_namespace : "${local.name}-pipeline"
  kubeflow_service_account = "${var.project}-pipeline"
  pipeline_prefix          = "pipeline/"
}

resource "aws_iam_role" "pipeline" {
  count = local.kubeflow_enabled ? 1 : 0

  name                 = "${local.name}-pipeline"
  description          = "Kubeflow pipeline pods of ${var.project} (${var.environment}) in profile ${local.kubeflow_namespace}"
  max_session_duration = 3600
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect    = "Allow"
        Action    = "sts:AssumeRoleWithWebIdentity"
        Principal = { Federated = var.kubeflow_oidc_provider_arn }
        Condition = {
          StringEquals = {
            "${local.kubeflow_oidc_issuer}:aud" = "sts.amazonaws.com"
            "${local.kubeflow_oidc_issuer}:sub" = "system:serviceaccount:${local.kubeflow_namespace}:${local.kubeflow_service_account}"
          }
        }
      },
    ]
  })
  permissions_boundary = aws_iam_policy.boundary.arn
}

resource "aws_iam_role_policy" "pipeline" {
  count = local.kubeflow_enabled ? 1 : 0

  name   = "pipeline-run-store"
  role   = aws_iam_role.pipeline[0].id
  policy = data.aws_iam_policy_document.pipeline.json
}

# orchestration/pipeline.py run: reads and replaces the run's artefacts under pipeline/ (runs/<run_id>/, persist/).
data "aws_iam_policy_document" "pipeline" {
  statement {
    sid       = "RunStoreObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.project["data"].arn}/${local.pipeline_prefix}*"]
  }

  statement {
    sid       = "ListRunStore"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.project["data"].arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.pipeline_prefix}*"]
    }
  }

  statement {
    sid       = "UseProjectKeyThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

output "pipeline_role_arn" {
  description = "IAM role of the Kubeflow pipeline's pods (the eks.amazonaws.com/role-arn annotation of orchestration/kubeflow/profile.yaml's service account)."
  value       = local.kubeflow_enabled ? aws_iam_role.pipeline[0].arn : ""
}

output "pipeline_store" {
  description = "Run store of the Kubeflow pipeline (PIPELINE_STORE of submit.py)."
  value       = "s3://${aws_s3_bucket.project["data"].bucket}/${trimsuffix(local.pipeline_prefix, "/")}"
}
