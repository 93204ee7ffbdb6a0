# Buckets: `data` (DVC remote under dvc/, batch input/output, the pipeline's run store under pipeline/) and `models`
# (model artifacts), and with orchestrator = airflow `airflow` (MWAA's DAGs), all KMS-encrypted,
# versioned, private, TLS-only and access-logged into `logs`. S3 server-access logs, load-balancer logs and VPC flow
# logs land in `logs`, which uses SSE-S3 because those log deliveries cannot write to an SSE-KMS bucket.

locals {
  buckets = merge(
    {
      data   = "${var.project}-data-${var.environment}"
      models = "${var.project}-models-${var.environment}"
    },
    # orchestrator = airflow: MWAA's DAG folder and requirements (MWAA needs the name to start with "airflow-")
    var.orchestrator == "airflow" ? { airflow = "airflow-${var.project}-${var.environment}" } : {},
  )
  log_bucket_name = "${var.project}-logs-${var.environment}"
  # Buckets whose S3 access logs the log bucket accepts: the project's, and the artefact bucket of the self-hosted
  # MLflow server (tracking_server.tf) under its fixed name, which only that bucket of this account can ever use.
  access_logged_buckets = merge(local.buckets, { mlflow = "${var.project}-mlflow-${var.environment}" })
}

resource "aws_s3_bucket" "project" {
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage cost; versioning and the source data in git/DVC cover recovery.
  for_each = local.buckets

  bucket        = each.value
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "project" {
  for_each = aws_s3_bucket.project

  bucket = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "project" {
  for_each = aws_s3_bucket.project

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "project" {
  for_each = aws_s3_bucket.project

  bucket = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    # One data key per bucket instead of one KMS call per object: the same protection at a fraction of the KMS cost.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "project" {
  for_each = aws_s3_bucket.project

  bucket = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "project" {
  for_each = aws_s3_bucket.project

  bucket = each.value.id

  rule {
    id     = "expire-replaced-versions"
    status = "Enabled"
    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }
    expiration {
      expired_object_delete_marker = true
    }
  }

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.project]
}

resource "aws_s3_bucket_logging" "project" {
  for_each = aws_s3_bucket.project

  bucket        = each.value.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/${each.value.id}/"

  # S3 refuses a logging target whose bucket policy does not yet grant logging.s3.amazonaws.com (the same grant the
  # VPC flow log and the load balancer wait for): every path into the log bucket waits for its policy.
  depends_on = [aws_s3_bucket_policy.logs]
}

# New data or a new model version becomes an EventBridge event (a hook for retraining or promotion rules).
resource "aws_s3_bucket_notification" "project" {
  for_each = aws_s3_bucket.project

  bucket      = each.value.id
  eventbridge = true
}

resource "aws_s3_bucket_policy" "project" {
  for_each = aws_s3_bucket.project

  bucket = each.value.id
  policy = data.aws_iam_policy_document.tls_only[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.project]
}

data "aws_iam_policy_document" "tls_only" {
  for_each = local.buckets

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = ["arn:${local.partition}:s3:::${each.value}", "arn:${local.partition}:s3:::${each.value}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyTlsOlderThan12"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = ["arn:${local.partition}:s3:::${each.value}", "arn:${local.partition}:s3:::${each.value}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

# Log bucket

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:This is the access-log target; logging it into itself would log its own log writes forever.
  #checkov:skip=CKV_AWS_144:Cross-region replication of access logs doubles their cost; they are kept a year in-region.
  #checkov:skip=CKV_AWS_145:S3 server-access and load-balancer log delivery support only SSE-S3 (AES256) targets.
  #checkov:skip=CKV2_AWS_62:Log objects need no event fan-out; nothing consumes events from this bucket.
  bucket        = local.log_bucket_name
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "expire-logs"
    status = "Enabled"
    filter {}

    expiration {
      days = var.access_log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.logs]
}

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = data.aws_iam_policy_document.logs_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.logs]
}

data "aws_elb_service_account" "current" {}

# Grants first, the TLS-only deny last. Statement order has no effect in AWS; the tests/ apply test's emulator (moto)
# reads the grants of a logging target in order and stops at a statement whose principal is "*".
data "aws_iam_policy_document" "logs_bucket" {
  # Each project bucket delivers its access logs under its own prefix only (aws:SourceArn: no other bucket, not even
  # one of this account, can write there), the policy shape the S3 documentation recommends.
  dynamic "statement" {
    for_each = local.access_logged_buckets

    content {
      sid       = "S3ServerAccessLogs${title(statement.key)}"
      actions   = ["s3:PutObject"]
      resources = ["${aws_s3_bucket.logs.arn}/s3/${statement.value}/*"]

      principals {
        type        = "Service"
        identifiers = ["logging.s3.amazonaws.com"]
      }

      condition {
        test     = "ArnLike"
        variable = "aws:SourceArn"
        values   = ["arn:${local.partition}:s3:::${statement.value}"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }
    }
  }

  statement {
    sid       = "LoadBalancerAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/alb/AWSLogs/${local.account_id}/*"]

    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.current.arn]
    }
  }

  statement {
    sid       = "LoadBalancerAccessLogsNewRegions"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/alb/AWSLogs/${local.account_id}/*"]

    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }
  }

  statement {
    sid       = "VpcFlowLogsWrite"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/vpc/AWSLogs/${local.account_id}/*"]

    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "VpcFlowLogsCheckBucket"
    actions   = ["s3:GetBucketAcl", "s3:ListBucket"]
    resources = [aws_s3_bucket.logs.arn]

    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}
