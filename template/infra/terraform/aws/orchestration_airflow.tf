# orchestrator = airflow: Amazon MWAA runs the DAG of orchestration/airflow/ and starts each stage as a Fargate task
# of the pipeline image (`python orchestration/pipeline.py run <stage>`), so training runs on compute sized here
# (pipeline_task_cpu / pipeline_task_memory), not on the CI runner.
#
#   airflow bucket     DAG folder (dags/: `make airflow-deploy` syncs dist/airflow-dags/ there), requirements.txt and
#                      the startup script that sets the DAG's Airflow Variables from this stack (one place)
#   MWAA environment   Airflow 3 (var.airflow_version), private webserver, in the VPC's private subnets
#   execution role     MWAA's own: its logs and metrics, the DAG bucket, ecs:RunTask of the pipeline task definition
#                      on this cluster, iam:PassRole of the pipeline's two roles to ECS only
#   pipeline task      the task definition the Retrain workflow registers new revisions of (the image by digest);
#                      its role reads and writes the run store (s3://<data bucket>/pipeline/) and nothing else
#
# The private subnets have no route to the internet: MWAA and the tasks reach AWS through the interface endpoints
# below (about $7/month each per AZ). The stages track to var.pipeline_tracking_uri (the MLflow server).
# The pipeline image, its task definition and the environment wait for var.pipeline_image, as serving waits for an
# image tag: the first Retrain run builds and pushes it and says so.

variable "airflow_version" {
  description = "Apache Airflow version of the MWAA environment (an Airflow 3 release MWAA offers; the DAG uses airflow.sdk)."
  type        = string
  default     = "3.0.6"

  validation {
    condition     = can(regex("^3\\.[0-9]+\\.[0-9]+$", var.airflow_version))
    error_message = "airflow_version must be an Airflow 3 release MWAA supports (the DAG is written for airflow.sdk)."
  }
}

variable "airflow_environment_class" {
  description = "MWAA environment class (mw1.micro ... mw1.2xlarge): the scheduler and workers only start tasks; the stages run on Fargate."
  type        = string
  default     = "mw1.small"
}

variable "airflow_max_workers" {
  description = "Upper bound of MWAA's worker autoscaling."
  type        = number
  default     = 2
}

variable "pipeline_image" {
  description = "The pipeline image by digest (<repository>@sha256:..., built by the Retrain workflow from Dockerfile.pipeline); empty until the first build."
  type        = string
  default     = ""

  validation {
    condition     = var.pipeline_image == "" || can(regex("^[^@:]+(:[A-Za-z0-9_.-]+)?@sha256:[a-f0-9]{64}$", var.pipeline_image))
    error_message = "pipeline_image must be pinned by digest: <repository>@sha256:<64 hex digits>."
  }
}

variable "pipeline_task_cpu" {
  description = "Fargate CPU units of a pipeline stage task (1024 = 1 vCPU): the compute training runs on."
  type        = number
  default     = 2048
}

variable "pipeline_task_memory" {
  description = "Fargate memory of a pipeline stage task in MiB."
  type        = number
  default     = 8192
}

variable "pipeline_tracking_uri" {
  description = "MLFLOW_TRACKING_URI of the stage tasks (the MLflow server the pipeline tracks to); empty: the tasks refuse to track into their container."
  type        = string
  default     = ""
}

locals {
  airflow_name       = "${local.name}-airflow"
  airflow_bucket     = aws_s3_bucket.project["airflow"]
  pipeline_enabled   = var.pipeline_image != ""
  pipeline_family    = "${local.name}-pipeline"
  pipeline_prefix    = "pipeline/"
  pipeline_store     = "s3://${aws_s3_bucket.project["data"].bucket}/${trimsuffix(local.pipeline_prefix, "/")}"
  pipeline_subnets   = slice(aws_subnet.private[*].id, 0, 2)
  airflow_arn        = "arn:${local.partition}:airflow:${var.region}:${local.account_id}:environment/${local.airflow_name}"
  airflow_log_groups = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:airflow-${local.airflow_name}-*"
  # MWAA in private subnets without a NAT: its own service endpoints, the queue, metrics and the key (ECR, logs and
  # S3 are the serving tasks' endpoints, network.tf, created here too when no service runs yet).
  airflow_endpoints = setsubtract(
    toset(["airflow.api", "airflow.env", "airflow.ops", "sqs", "monitoring", "kms", "ecr.api", "ecr.dkr", "logs"]),
    local.serving_enabled ? local.interface_endpoints : toset([]),
  )
  # The DAG's Airflow Variables (training_pipeline.py reads them as var.value.*), exported by the startup script.
  airflow_variables = {
    pipeline_store           = local.pipeline_store
    pipeline_ecs_cluster     = aws_ecs_cluster.main.name
    pipeline_task_definition = local.pipeline_family
    pipeline_subnet_a        = local.pipeline_subnets[0]
    pipeline_subnet_b        = local.pipeline_subnets[1]
    pipeline_security_group  = aws_security_group.pipeline_tasks.id
    pipeline_log_group       = aws_cloudwatch_log_group.app.name
  }
}

# DAG bucket content (the bucket itself is storage.tf's `airflow`: versioned, KMS, private, TLS only, access-logged)

resource "aws_s3_object" "airflow_requirements" {
  count = local.pipeline_enabled ? 1 : 0

  bucket     = local.airflow_bucket.id
  key        = "requirements.txt"
  kms_key_id = aws_kms_key.main.arn
  # The Amazon provider (EcsRunTaskOperator) ships with MWAA; the constraints of the Airflow release keep it so.
  content = "--constraint \"https://raw.githubusercontent.com/apache/airflow/constraints-${var.airflow_version}/constraints-3.12.txt\"\n"
}

resource "aws_s3_object" "airflow_startup" {
  count = local.pipeline_enabled ? 1 : 0

  bucket     = local.airflow_bucket.id
  key        = "startup.sh"
  kms_key_id = aws_kms_key.main.arn
  content = join("\n", concat(
    ["#!/bin/sh", "# The DAG's Airflow Variables, from infra/terraform/aws (orchestration_airflow.tf)."],
    [for name, value in local.airflow_variables : "export AIRFLOW_VAR_${upper(name)}='${value}'"],
    [""],
  ))
}

# Network: MWAA's security group admits itself (its scheduler, workers and webserver talk to each other); the stage
# tasks accept nothing and reach the endpoints and S3 only.

resource "aws_security_group" "airflow" {
  name        = local.airflow_name
  description = "MWAA ${local.airflow_name}: traffic between its own components, HTTPS to the VPC endpoints"
  vpc_id      = aws_vpc.main.id

  tags = { Name = local.airflow_name }
}

resource "aws_vpc_security_group_ingress_rule" "airflow_self" {
  security_group_id            = aws_security_group.airflow.id
  description                  = "MWAA components among themselves"
  ip_protocol                  = "-1"
  referenced_security_group_id = aws_security_group.airflow.id
}

resource "aws_vpc_security_group_egress_rule" "airflow_self" {
  security_group_id            = aws_security_group.airflow.id
  description                  = "MWAA components among themselves"
  ip_protocol                  = "-1"
  referenced_security_group_id = aws_security_group.airflow.id
}

resource "aws_vpc_security_group_egress_rule" "airflow_to_endpoints" {
  security_group_id            = aws_security_group.airflow.id
  description                  = "HTTPS to the AWS service endpoints"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
}

resource "aws_vpc_security_group_egress_rule" "airflow_to_s3" {
  security_group_id = aws_security_group.airflow.id
  description       = "HTTPS to S3 through the gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}

resource "aws_security_group" "pipeline_tasks" {
  #checkov:skip=CKV2_AWS_5:Attached to the stage tasks by the DAG's EcsRunTaskOperator (network_configuration), a link checkov's graph does not follow.
  name        = "${local.name}-pipeline-tasks"
  description = "Pipeline stage tasks of ${local.name}: no ingress; egress to AWS endpoints and S3 only"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-pipeline-tasks" }
}

resource "aws_vpc_security_group_egress_rule" "pipeline_tasks_to_endpoints" {
  security_group_id            = aws_security_group.pipeline_tasks.id
  description                  = "HTTPS to the AWS service endpoints"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
}

resource "aws_vpc_security_group_egress_rule" "pipeline_tasks_to_s3" {
  security_group_id = aws_security_group.pipeline_tasks.id
  description       = "HTTPS to S3 through the gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}

resource "aws_vpc_endpoint" "airflow" {
  for_each = local.pipeline_enabled ? local.airflow_endpoints : toset([])

  vpc_id              = aws_vpc.main.id
  service_name        = "com.amazonaws.${var.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = local.pipeline_subnets
  security_group_ids  = [aws_security_group.endpoints.id]

  tags = { Name = "${local.name}-${each.key}" }
}

# MWAA's execution role

resource "aws_iam_role" "airflow" {
  name                 = "${local.airflow_name}-execution"
  assume_role_policy   = data.aws_iam_policy_document.airflow_trust.json
  permissions_boundary = aws_iam_policy.boundary.arn
}

data "aws_iam_policy_document" "airflow_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role_policy" "airflow" {
  name   = "run-the-pipeline"
  role   = aws_iam_role.airflow.id
  policy = data.aws_iam_policy_document.airflow.json
}

data "aws_iam_policy_document" "airflow" {
  statement {
    sid       = "PublishEnvironmentMetrics"
    actions   = ["airflow:PublishMetrics"]
    resources = [local.airflow_arn]
  }

  statement {
    sid       = "ReadDagBucket"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetBucketLocation", "s3:GetBucketPublicAccessBlock", "s3:ListBucket"]
    resources = [local.airflow_bucket.arn, "${local.airflow_bucket.arn}/*"]
  }

  # MWAA checks that public access is blocked on the account as well; the call has no resource-level scope.
  statement {
    sid       = "CheckAccountPublicAccessBlock"
    actions   = ["s3:GetAccountPublicAccessBlock"]
    resources = ["*"]
  }

  statement {
    sid = "WriteEnvironmentLogs"
    actions = [
      "logs:CreateLogStream", "logs:CreateLogGroup", "logs:PutLogEvents", "logs:GetLogEvents",
      "logs:GetLogRecord", "logs:GetLogGroupFields", "logs:GetQueryResults",
    ]
    resources = [local.airflow_log_groups, "${local.airflow_log_groups}:*"]
  }

  # CloudWatch metrics have no resource ARN: the namespace condition keeps it to MWAA's.
  statement {
    sid       = "PutEnvironmentMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["AmazonMWAA"]
    }
  }

  statement {
    sid = "CeleryQueue"
    actions = [
      "sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
      "sqs:ReceiveMessage", "sqs:SendMessage",
    ]
    resources = ["arn:${local.partition}:sqs:${var.region}:*:airflow-celery-*"]
  }

  statement {
    sid       = "UseProjectKeyThroughSqsAndS3"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:Encrypt"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringLike"
      variable = "kms:ViaService"
      values   = ["sqs.${var.region}.amazonaws.com", "s3.${var.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "RunPipelineTasks"
    actions   = ["ecs:RunTask"]
    resources = ["arn:${local.partition}:ecs:${var.region}:${local.account_id}:task-definition/${local.pipeline_family}:*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.main.arn]
    }
  }

  statement {
    sid       = "WatchPipelineTasks"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = ["arn:${local.partition}:ecs:${var.region}:${local.account_id}:task/${aws_ecs_cluster.main.name}/*"]
  }

  # The operator resolves the family to its latest revision; DescribeTaskDefinition has no resource-level scope.
  statement {
    sid       = "ResolvePipelineTaskDefinition"
    actions   = ["ecs:DescribeTaskDefinition"]
    resources = ["*"]
  }

  statement {
    sid       = "PassPipelineRolesToEcs"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.pipeline_task.arn, aws_iam_role.task_execution.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  # The task's log is the stage's output; its last line is the stage's result (the task's XCom).
  statement {
    sid       = "ReadPipelineTaskLogs"
    actions   = ["logs:GetLogEvents", "logs:FilterLogEvents"]
    resources = ["${aws_cloudwatch_log_group.app.arn}:*"]
  }
}

# The pipeline's stage tasks

resource "aws_iam_role" "pipeline_task" {
  name                 = "${local.name}-pipeline-task"
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_trust.json
  permissions_boundary = aws_iam_policy.boundary.arn
}

resource "aws_iam_role_policy" "pipeline_task" {
  name   = "run-store"
  role   = aws_iam_role.pipeline_task.id
  policy = data.aws_iam_policy_document.pipeline_task.json
}

data "aws_iam_policy_document" "pipeline_task" {
  statement {
    sid       = "ReadWriteRunStore"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["arn:${local.partition}:s3:::${aws_s3_bucket.project["data"].bucket}/${local.pipeline_prefix}*"]
  }

  statement {
    sid       = "ListRunStore"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${local.partition}:s3:::${aws_s3_bucket.project["data"].bucket}"]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [local.pipeline_prefix, "${local.pipeline_prefix}*"]
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

resource "aws_ecs_task_definition" "pipeline" {
  count = local.pipeline_enabled ? 1 : 0

  family                   = local.pipeline_family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.pipeline_task_cpu
  memory                   = var.pipeline_task_memory
  execution_role_arn       = aws_iam_role.task_execution.arn
  task_role_arn            = aws_iam_role.pipeline_task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    {
      name                   = "pipeline"
      image                  = var.pipeline_image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "10001:10001"
      command                = ["python", "orchestration/pipeline.py", "describe"]
      environment = [
        { name = "APP_ENV", value = var.environment },
        { name = "PIPELINE_STORE", value = local.pipeline_store },
        { name = "MLFLOW_TRACKING_URI", value = var.pipeline_tracking_uri },
      ]
      mountPoints     = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
      linuxParameters = { initProcessEnabled = true, capabilities = { drop = ["ALL"] } }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.app.name
          awslogs-region        = var.region
          awslogs-stream-prefix = "pipeline"
        }
      }
    }
  ])
}

# The environment

resource "aws_mwaa_environment" "main" {
  count = local.pipeline_enabled ? 1 : 0

  name                             = local.airflow_name
  airflow_version                  = var.airflow_version
  environment_class                = var.airflow_environment_class
  max_workers                      = var.airflow_max_workers
  execution_role_arn               = aws_iam_role.airflow.arn
  kms_key                          = aws_kms_key.main.arn
  source_bucket_arn                = local.airflow_bucket.arn
  dag_s3_path                      = "dags/"
  requirements_s3_path             = aws_s3_object.airflow_requirements[0].key
  requirements_s3_object_version   = aws_s3_object.airflow_requirements[0].version_id
  startup_script_s3_path           = aws_s3_object.airflow_startup[0].key
  startup_script_s3_object_version = aws_s3_object.airflow_startup[0].version_id
  webserver_access_mode            = "PRIVATE_ONLY"

  airflow_configuration_options = {
    "core.load_examples" = "false"
  }

  network_configuration {
    security_group_ids = [aws_security_group.airflow.id]
    subnet_ids         = local.pipeline_subnets
  }

  logging_configuration {
    dag_processing_logs {
      enabled   = true
      log_level = "INFO"
    }
    scheduler_logs {
      enabled   = true
      log_level = "INFO"
    }
    task_logs {
      enabled   = true
      log_level = "INFO"
    }
    webserver_logs {
      enabled   = true
      log_level = "WARNING"
    }
    worker_logs {
      enabled   = true
      log_level = "WARNING"
    }
  }

  lifecycle {
    precondition {
      condition     = var.az_count >= 2
      error_message = "MWAA needs two private subnets in different zones: set az_count = 2 or 3."
    }
  }

  depends_on = [aws_s3_bucket_policy.project, aws_s3_bucket_public_access_block.project]
}

# CI (main branch: the Retrain workflow) deploys the DAG folder, registers the pipeline image and starts runs.

resource "aws_iam_role_policy" "ci_main_airflow" {
  count = var.create_main_branch_role ? 1 : 0

  name   = "run-the-airflow-pipeline"
  role   = aws_iam_role.ci_main[0].id
  policy = data.aws_iam_policy_document.ci_main_airflow.json
}

data "aws_iam_policy_document" "ci_main_airflow" {
  # InvokeRestApi as Airflow's User role: trigger and read runs of DAGs, never edit connections or variables.
  statement {
    sid       = "TriggerAndWatchRuns"
    actions   = ["airflow:InvokeRestApi"]
    resources = ["arn:${local.partition}:airflow:${var.region}:${local.account_id}:role/${local.airflow_name}/User"]
  }

  statement {
    sid       = "FindTheWebserver"
    actions   = ["airflow:GetEnvironment"]
    resources = [local.airflow_arn]
  }

  # RegisterTaskDefinition and DescribeTaskDefinition have no resource-level permissions; PassRole below limits what
  # a registered revision can run as.
  statement {
    sid       = "RegisterPipelineImage"
    actions   = ["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"]
    resources = ["*"]
  }

  statement {
    sid       = "PassPipelineRolesToEcs"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.pipeline_task.arn, aws_iam_role.task_execution.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

output "airflow_environment" {
  description = "Name of the MWAA environment (the Retrain workflow's MWAA_ENVIRONMENT); empty before the first pipeline image."
  value       = local.pipeline_enabled ? aws_mwaa_environment.main[0].name : ""
}

output "airflow_dag_bucket" {
  description = "Bucket of MWAA's DAG folder: `make airflow-deploy` syncs dist/airflow-dags/ to its dags/."
  value       = local.airflow_bucket.bucket
}

output "airflow_variables" {
  description = "The Airflow Variables the MWAA startup script exports for the DAG (their values come from this stack)."
  value       = sort(keys(local.airflow_variables))
}

output "pipeline_task_definition" {
  description = "Family of the pipeline's task definition: the Retrain workflow registers a revision per pipeline image."
  value       = local.pipeline_family
}

output "pipeline_store" {
  description = "The pipeline's run store (orchestration/pipeline.py run --store)."
  value       = local.pipeline_store
}
