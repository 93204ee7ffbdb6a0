# Batch scoring on Spark (var.batch_engine = "spark"): an EMR Serverless application runs
# `python -m <package>.spark_batch` (the same scoring core as the ECS task, in Spark's mapInArrow) on the image
# Dockerfile.spark builds: EMR's Spark runtime, the project's package and the champion model. The schedule of
# serving_batch.tf then starts an EMR Serverless job run instead of the ECS task. Created once var.image_tag is set.
#
# Why EMR Serverless: no cluster to size, patch or stop; capacity is billed per job while it runs, capped below
# by maximum_capacity; the input and output stay in the data bucket, reached through the VPC's S3 endpoint.

variable "spark_release_label" {
  description = "EMR release of the Spark application (its Spark and Java); Dockerfile.spark builds on the same."
  type        = string
  default     = "emr-7.5.0"
}

variable "spark_max_vcpu" {
  description = "Most vCPUs the Spark application may hold at once (the cost ceiling of one run)."
  type        = number
  default     = 16
}

variable "spark_max_memory_gb" {
  description = "Most memory (GB) the Spark application may hold at once."
  type        = number
  default     = 64
}

locals {
  spark_enabled = var.batch_engine == "spark"
  spark_image   = "${local.image_repository_url}:${var.image_tag}-spark"
  # the predictions, their rejects (<stem>.rejects.<ext>) and the validation report: one folder of the data bucket
  batch_output_folder = "${dirname(var.batch_output_key)}/"
  spark_logs_prefix   = "batch/spark-logs/"
  # StartJobRun's request, as the schedule sends it (serving_batch.tf); the execution id makes a retry idempotent.
  spark_job_run = {
    ApplicationId    = one(aws_emrserverless_application.batch[*].id)
    ExecutionRoleArn = one(aws_iam_role.spark_job[*].arn)
    ClientToken      = "<aws.scheduler.execution-id>"
    Name             = "${local.name}-batch"
    JobDriver = {
      SparkSubmit = {
        EntryPoint          = "local:///opt/app/score.py"
        EntryPointArguments = ["--input", local.batch_input_uri, "--output", local.batch_output_uri]
        # one task per core: onnxruntime runs single-threaded in each (scoring/model.py)
        SparkSubmitParameters = "--conf spark.sql.session.timeZone=UTC --conf spark.task.cpus=1"
      }
    }
    ConfigurationOverrides = {
      MonitoringConfiguration = {
        S3MonitoringConfiguration = { LogUri = "s3://${aws_s3_bucket.project["data"].bucket}/${local.spark_logs_prefix}" }
      }
    }
  }
}

resource "aws_emrserverless_application" "batch" {
  count = local.serving_enabled && local.spark_enabled ? 1 : 0

  name          = "${local.name}-batch"
  release_label = var.spark_release_label
  type          = "spark"

  image_configuration {
    image_uri = local.spark_image
  }

  maximum_capacity {
    cpu    = "${var.spark_max_vcpu} vCPU"
    memory = "${var.spark_max_memory_gb} GB"
  }

  auto_start_configuration {
    enabled = true
  }

  auto_stop_configuration {
    enabled              = true
    idle_timeout_minutes = 15
  }

  network_configuration {
    subnet_ids         = aws_subnet.private[*].id
    security_group_ids = [aws_security_group.spark[0].id]
  }

  depends_on = [aws_vpc_endpoint.interface]
}

# The driver and executors talk to each other and to the AWS endpoints and S3; nothing reaches them from outside.
resource "aws_security_group" "spark" {
  count = local.spark_enabled ? 1 : 0

  #checkov:skip=CKV2_AWS_5:Attached to the EMR Serverless application's network_configuration, a link checkov's graph does not follow.
  name        = "${local.name}-spark"
  description = "Spark workers of ${local.name}: traffic among themselves; egress to AWS endpoints and S3 only"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-spark" }
}

resource "aws_vpc_security_group_ingress_rule" "spark_from_spark" {
  #checkov:skip=CKV_AWS_25:The source is this security group only (the workers of one job run), never 0.0.0.0/0; Spark's ports are dynamic.
  count = local.spark_enabled ? 1 : 0

  security_group_id            = aws_security_group.spark[0].id
  description                  = "Driver and executors of one job run (Spark's block manager and RPC ports)"
  ip_protocol                  = "tcp"
  from_port                    = 1024
  to_port                      = 65535
  referenced_security_group_id = aws_security_group.spark[0].id
}

resource "aws_vpc_security_group_egress_rule" "spark_to_spark" {
  count = local.spark_enabled ? 1 : 0

  security_group_id            = aws_security_group.spark[0].id
  description                  = "Driver and executors of one job run"
  ip_protocol                  = "tcp"
  from_port                    = 1024
  to_port                      = 65535
  referenced_security_group_id = aws_security_group.spark[0].id
}

resource "aws_vpc_security_group_egress_rule" "spark_to_endpoints" {
  count = local.spark_enabled ? 1 : 0

  security_group_id            = aws_security_group.spark[0].id
  description                  = "HTTPS to the interface endpoints (ECR, CloudWatch Logs)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
}

resource "aws_vpc_security_group_egress_rule" "spark_to_s3" {
  count = local.spark_enabled ? 1 : 0

  security_group_id = aws_security_group.spark[0].id
  description       = "HTTPS to S3 through the gateway endpoint (data, logs)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}

# The job's runtime role: read the input, write the output folder and the job's logs, decrypt through S3.

resource "aws_iam_role" "spark_job" {
  count = local.spark_enabled ? 1 : 0

  name                 = "${local.name}-spark-job"
  assume_role_policy   = data.aws_iam_policy_document.spark_job_trust.json
  permissions_boundary = aws_iam_policy.boundary.arn
}

data "aws_iam_policy_document" "spark_job_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role_policy" "spark_job" {
  count = local.spark_enabled ? 1 : 0

  name   = "read-input-write-output"
  role   = aws_iam_role.spark_job[0].id
  policy = data.aws_iam_policy_document.spark_job.json
}

data "aws_iam_policy_document" "spark_job" {
  statement {
    sid       = "ReadInput"
    actions   = ["s3:GetObject"]
    resources = ["${local.data_bucket_arn}/${var.batch_input_key}*"]
  }

  # Spark's committer writes part files under <output>/_temporary/ and moves them; an overwrite deletes first.
  statement {
    sid       = "WriteOutputFolderAndLogs"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${local.data_bucket_arn}/${local.batch_output_folder}*", "${local.data_bucket_arn}/${local.spark_logs_prefix}*"]
  }

  statement {
    sid       = "ListBatchPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [local.data_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.batch_input_key}*", "${local.batch_output_folder}*", "${local.spark_logs_prefix}*"]
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

output "spark_batch_job" {
  description = "batch_engine = spark: what `make spark-batch-submit` submits (the schedule's StartJobRun request and the output); null otherwise."
  value = local.serving_enabled && local.spark_enabled ? {
    engine  = "emr-serverless"
    request = local.spark_job_run
    output  = local.batch_output_uri
  } : null
}
