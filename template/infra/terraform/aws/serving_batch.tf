# serving = batch: an EventBridge Scheduler schedule runs the serving image as a one-off ECS Fargate task with the
# command `python -m <package>.batch`, reading BATCH_INPUT_URI and writing BATCH_OUTPUT_URI in the data bucket
# (batch_engine = "spark": it starts an EMR Serverless job run of `<package>.spark_batch` instead, spark_batch.tf).
# Created once var.image_tag is set.

variable "batch_schedule" {
  description = "When the batch job runs (EventBridge Scheduler expression)."
  type        = string
  default     = "cron(0 6 * * ? *)"
}

variable "batch_schedule_timezone" {
  description = "Time zone of batch_schedule."
  type        = string
  default     = "UTC"
}

variable "batch_input_key" {
  description = "Object key (in the data bucket) of the table to score."
  type        = string
  default     = "batch/input/records.csv"
}

variable "batch_output_key" {
  description = "Object key (in the data bucket) the predictions are written to."
  type        = string
  default     = "batch/output/predictions.csv"
}

variable "batch_task_cpu" {
  description = "Fargate CPU units of the batch task (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "batch_task_memory" {
  description = "Fargate memory of the batch task in MiB."
  type        = number
  default     = 2048
}

locals {
  batch_family    = "${local.name}-batch"
  data_bucket_arn = aws_s3_bucket.project["data"].arn
  # .bucket (the configured name) rather than .id: the same value, known at plan time, so a plan shows the task's
  # environment instead of "(known after apply)".
  batch_input_uri  = "s3://${aws_s3_bucket.project["data"].bucket}/${var.batch_input_key}"
  batch_output_uri = "s3://${aws_s3_bucket.project["data"].bucket}/${var.batch_output_key}"
  service_url      = local.serving_enabled ? aws_scheduler_schedule.batch[0].name : ""
}

# Task

resource "aws_iam_role" "batch_task" {
  name                 = "${local.name}-batch-task"
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_trust.json
  permissions_boundary = aws_iam_policy.boundary.arn
}

resource "aws_iam_role_policy" "batch_task" {
  name   = "read-input-write-output"
  role   = aws_iam_role.batch_task.id
  policy = data.aws_iam_policy_document.batch_task.json
}

data "aws_iam_policy_document" "batch_task" {
  statement {
    sid       = "ReadInput"
    actions   = ["s3:GetObject"]
    resources = ["${local.data_bucket_arn}/${var.batch_input_key}"]
  }

  # the output's folder: the predictions, their rejects (<stem>.rejects.<ext>), the staging name and the report;
  # the commit renames <output>.partial to <output>, which on S3 is a copy and a delete of the staging object
  statement {
    sid       = "WriteOutputRejectsAndValidationReport"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"]
    resources = ["${local.data_bucket_arn}/${local.batch_output_folder}*"]
  }

  statement {
    sid       = "ListBatchPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [local.data_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.batch_input_key, "${local.batch_output_folder}*"]
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

resource "aws_ecs_task_definition" "batch" {
  count = local.serving_enabled ? 1 : 0

  family                   = local.batch_family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.batch_task_cpu
  memory                   = var.batch_task_memory
  execution_role_arn       = aws_iam_role.task_execution.arn
  task_role_arn            = aws_iam_role.batch_task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    {
      name                   = "batch"
      image                  = local.image_uri
      essential              = true
      readonlyRootFilesystem = true
      user                   = "10001:10001"
      entryPoint             = ["python", "-m", "${var.package_name}.batch"]
      environment = [
        { name = "APP_ENV", value = var.environment },
        { name = "BATCH_INPUT_URI", value = local.batch_input_uri },
        { name = "BATCH_OUTPUT_URI", value = local.batch_output_uri },
      ]
      mountPoints     = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
      linuxParameters = { initProcessEnabled = true, capabilities = { drop = ["ALL"] } }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.app.name
          awslogs-region        = var.region
          awslogs-stream-prefix = "batch"
        }
      }
    }
  ])
}

# The batch task accepts no connections and reaches only the AWS endpoints and S3.
resource "aws_security_group" "batch_tasks" {
  #checkov:skip=CKV2_AWS_5:Attached to the batch task by the schedule's ecs_parameters.network_configuration, a link checkov's graph does not follow.
  name        = "${local.name}-batch-tasks"
  description = "Batch tasks of ${local.name}: no ingress; egress to AWS endpoints and S3 only"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-batch-tasks" }
}

resource "aws_vpc_security_group_egress_rule" "batch_tasks_to_endpoints" {
  security_group_id            = aws_security_group.batch_tasks.id
  description                  = "HTTPS to the interface endpoints (ECR, CloudWatch Logs)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
}

resource "aws_vpc_security_group_egress_rule" "batch_tasks_to_s3" {
  security_group_id = aws_security_group.batch_tasks.id
  description       = "HTTPS to S3 through the gateway endpoint (image layers, data and model objects)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}

# Schedule

resource "aws_scheduler_schedule" "batch" {
  count = local.serving_enabled ? 1 : 0

  name                         = local.batch_family
  description                  = "Scores ${var.batch_input_key} into ${var.batch_output_key}"
  schedule_expression          = var.batch_schedule
  schedule_expression_timezone = var.batch_schedule_timezone
  kms_key_arn                  = aws_kms_key.main.arn

  flexible_time_window {
    mode = "OFF"
  }

  # batch_engine = "container": the ECS task; "spark": a job run of the EMR Serverless application (spark_batch.tf)
  target {
    arn      = local.spark_enabled ? "arn:${local.partition}:scheduler:::aws-sdk:emrserverless:startJobRun" : aws_ecs_cluster.main.arn
    role_arn = aws_iam_role.scheduler.arn
    input    = local.spark_enabled ? jsonencode(local.spark_job_run) : null

    dynamic "ecs_parameters" {
      for_each = local.spark_enabled ? [] : [aws_ecs_task_definition.batch[0].arn]

      content {
        task_definition_arn     = ecs_parameters.value
        launch_type             = "FARGATE"
        platform_version        = "LATEST"
        task_count              = 1
        enable_ecs_managed_tags = true
        propagate_tags          = "TASK_DEFINITION"

        network_configuration {
          subnets          = aws_subnet.private[*].id
          security_groups  = [aws_security_group.batch_tasks.id]
          assign_public_ip = false
        }
      }
    }

    retry_policy {
      maximum_retry_attempts       = 2
      maximum_event_age_in_seconds = 3600
    }
  }

  depends_on = [aws_vpc_endpoint.interface]
}

resource "aws_iam_role" "scheduler" {
  name                 = "${local.name}-scheduler"
  assume_role_policy   = data.aws_iam_policy_document.scheduler_trust.json
  permissions_boundary = aws_iam_policy.boundary.arn
}

data "aws_iam_policy_document" "scheduler_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "run-batch-task"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "RunBatchTask"
    actions   = ["ecs:RunTask"]
    resources = ["arn:${local.partition}:ecs:${var.region}:${local.account_id}:task-definition/${local.batch_family}:*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.main.arn]
    }
  }

  statement {
    sid       = "TagBatchTask"
    actions   = ["ecs:TagResource"]
    resources = ["arn:${local.partition}:ecs:${var.region}:${local.account_id}:task/${local.name}/*"]
  }

  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.task_execution.arn, aws_iam_role.batch_task.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  dynamic "statement" {
    for_each = local.spark_enabled ? aws_emrserverless_application.batch[*].arn : []

    content {
      sid       = "StartSparkJobRun"
      actions   = ["emr-serverless:StartJobRun"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = local.spark_enabled ? aws_iam_role.spark_job[*].arn : []

    content {
      sid       = "PassSparkJobRole"
      actions   = ["iam:PassRole"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "iam:PassedToService"
        values   = ["emr-serverless.amazonaws.com"]
      }
    }
  }

  statement {
    sid       = "ReadEncryptedSchedule"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
  }
}
