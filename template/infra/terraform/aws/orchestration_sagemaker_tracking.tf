# orchestrator = sagemaker with tracking_server = managed: the stages' jobs log to the managed MLflow server as CI
# does (tracking_sagemaker.tf): its data plane, SigV4-signed with the job role, and its artefact prefix.

resource "aws_iam_role_policy" "sagemaker_job_tracking" {
  name   = "mlflow-tracking"
  role   = aws_iam_role.sagemaker_job.id
  policy = data.aws_iam_policy_document.sagemaker_job_tracking.json
}

data "aws_iam_policy_document" "sagemaker_job_tracking" {
  # The server this stack creates, or the organisation's managed server named by its ARN (an https URL is a
  # self-hosted server, which these jobs cannot log in to: copier.yml refuses that combination).
  dynamic "statement" {
    for_each = local.tracking_create || startswith(var.tracking_server_url, "arn:") ? [local.tracking_create ? "arn:${local.partition}:sagemaker:${var.region}:${local.account_id}:mlflow-tracking-server/${local.tracking_name}" : var.tracking_server_url] : []

    content {
      sid       = "UseTheTrackingServer"
      actions   = ["sagemaker-mlflow:*"]
      resources = [statement.value]
    }
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

  statement {
    sid       = "ArtefactKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}
