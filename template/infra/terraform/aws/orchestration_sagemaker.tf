# orchestrator = sagemaker: the two roles of the SageMaker pipeline (orchestration/sagemaker/, README.md "Running on
# SageMaker Pipelines").
#
#   CI (train.yml) --create/update_pipeline, start_pipeline_execution--> SageMaker Pipelines
#      runs as  <name>-sagemaker-pipeline: starts the steps' processing and training jobs, passes them
#      <name>-sagemaker-job: what the stages run as, in the pipeline image (`python orchestration/pipeline.py run`)
#
# - The pipeline role may create jobs only on the instance types of the variables below, with the project key on
#   their volumes and outputs, and pass the job role to SageMaker only.
# - The job role reads and writes the run's artefacts under pipeline/ of the data bucket (the store), pulls the
#   pipeline image, writes the jobs' CloudWatch logs, and uses the project key through S3. MLflow access, with
#   tracking_server managed, is granted in orchestration_sagemaker_tracking.tf as CI's is in tracking_sagemaker.tf.
#
# The pipeline itself is not a Terraform resource: its definition follows dvc.yaml and is upserted by the Retrain
# workflow (orchestration/sagemaker/submit.py) with every run, so an aws_sagemaker_pipeline here would be reverted
# by the next run, or revert it.

variable "sagemaker_processing_instance_types" {
  description = "Instance types the pipeline's processing steps (every stage but train) may run on; the first is the default of the parameter ProcessingInstanceType."
  type        = list(string)
  default     = ["ml.m5.large"]

  validation {
    condition     = length(var.sagemaker_processing_instance_types) > 0 && alltrue([for type in var.sagemaker_processing_instance_types : can(regex("^ml\\.[a-z0-9]+\\.[a-z0-9]+$", type))])
    error_message = "sagemaker_processing_instance_types must list SageMaker instance types such as ml.m5.large."
  }
}

variable "sagemaker_training_instance_types" {
  description = "Instance types the train stage's training job may run on; the first is the default of the parameter TrainingInstanceType."
  type        = list(string)
  default     = ["ml.m5.xlarge"]

  validation {
    condition     = length(var.sagemaker_training_instance_types) > 0 && alltrue([for type in var.sagemaker_training_instance_types : can(regex("^ml\\.[a-z0-9]+\\.[a-z0-9]+$", type))])
    error_message = "sagemaker_training_instance_types must list SageMaker instance types such as ml.m5.xlarge."
  }
}

variable "sagemaker_volume_size_gb" {
  description = "Storage volume of each job, in GB (the parameter VolumeSizeGB)."
  type        = number
  default     = 30

  validation {
    condition     = var.sagemaker_volume_size_gb >= 1 && var.sagemaker_volume_size_gb <= 512
    error_message = "sagemaker_volume_size_gb must be between 1 and 512."
  }
}

variable "sagemaker_max_runtime_minutes" {
  description = "Longest a single job may run; the pipeline role cannot start a job with a longer stopping condition."
  type        = number
  default     = 240
}

locals {
  sagemaker_store_prefix   = "pipeline"
  sagemaker_store          = "s3://${local.buckets["data"]}/${local.sagemaker_store_prefix}"
  sagemaker_data_bucket    = "arn:${local.partition}:s3:::${local.buckets["data"]}"
  sagemaker_pipeline_image = "arn:${local.partition}:ecr:${var.region}:${local.registry_account_id}:repository/${var.project}-pipeline"
  sagemaker_job_arns = [
    "arn:${local.partition}:sagemaker:${var.region}:${local.account_id}:processing-job/*",
    "arn:${local.partition}:sagemaker:${var.region}:${local.account_id}:training-job/*",
  ]
  sagemaker_log_groups = [
    "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/aws/sagemaker/ProcessingJobs:*",
    "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/aws/sagemaker/TrainingJobs:*",
  ]
}

data "aws_iam_policy_document" "sagemaker_pipeline_trust" {
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

resource "aws_iam_role" "sagemaker_pipeline" {
  name                 = "${local.name}-sagemaker-pipeline"
  description          = "SageMaker Pipelines runs the training pipeline of ${local.name} with it"
  assume_role_policy   = data.aws_iam_policy_document.sagemaker_pipeline_trust.json
  permissions_boundary = aws_iam_policy.boundary.arn
}

resource "aws_iam_role" "sagemaker_job" {
  name                 = "${local.name}-sagemaker-job"
  description          = "The processing and training jobs of the training pipeline of ${local.name}"
  assume_role_policy   = data.aws_iam_policy_document.sagemaker_pipeline_trust.json
  permissions_boundary = aws_iam_policy.boundary.arn
}

resource "aws_iam_role_policy" "sagemaker_pipeline" {
  name   = "run-the-pipeline"
  role   = aws_iam_role.sagemaker_pipeline.id
  policy = data.aws_iam_policy_document.sagemaker_pipeline.json
}

data "aws_iam_policy_document" "sagemaker_pipeline" {
  statement {
    sid       = "StartProcessingJobs"
    actions   = ["sagemaker:CreateProcessingJob"]
    resources = [local.sagemaker_job_arns[0]]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "sagemaker:InstanceTypes"
      values   = var.sagemaker_processing_instance_types
    }

    condition {
      test     = "StringEquals"
      variable = "sagemaker:VolumeKmsKey"
      values   = [aws_kms_key.main.arn]
    }

    condition {
      test     = "NumericLessThanEquals"
      variable = "sagemaker:MaxRuntimeInSeconds"
      values   = [tostring(var.sagemaker_max_runtime_minutes * 60)]
    }
  }

  statement {
    sid       = "StartTrainingJobs"
    actions   = ["sagemaker:CreateTrainingJob"]
    resources = [local.sagemaker_job_arns[1]]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "sagemaker:InstanceTypes"
      values   = var.sagemaker_training_instance_types
    }

    condition {
      test     = "StringEquals"
      variable = "sagemaker:VolumeKmsKey"
      values   = [aws_kms_key.main.arn]
    }

    condition {
      test     = "NumericLessThanEquals"
      variable = "sagemaker:MaxRuntimeInSeconds"
      values   = [tostring(var.sagemaker_max_runtime_minutes * 60)]
    }
  }

  statement {
    sid = "FollowTheJobs"
    actions = [
      "sagemaker:AddTags",
      "sagemaker:DescribeProcessingJob",
      "sagemaker:DescribeTrainingJob",
      "sagemaker:StopProcessingJob",
      "sagemaker:StopTrainingJob",
    ]
    resources = local.sagemaker_job_arns
  }

  statement {
    sid       = "PassTheJobRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.sagemaker_job.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["sagemaker.amazonaws.com"]
    }
  }

  # The gate's result file (the ConditionStep's PropertyFile) is read from the run's folder by the pipeline.
  statement {
    sid       = "ReadStepResults"
    actions   = ["s3:GetObject"]
    resources = ["${local.sagemaker_data_bucket}/${local.sagemaker_store_prefix}/*"]
  }

  statement {
    sid       = "ProjectKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com", "sagemaker.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "sagemaker_job" {
  name   = "run-the-stages"
  role   = aws_iam_role.sagemaker_job.id
  policy = data.aws_iam_policy_document.sagemaker_job.json
}

data "aws_iam_policy_document" "sagemaker_job" {
  #checkov:skip=CKV_AWS_356:ecr:GetAuthorizationToken has no resource type; it grants no image by itself.
  statement {
    sid       = "ListTheStore"
    actions   = ["s3:ListBucket"]
    resources = [local.sagemaker_data_bucket]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [local.sagemaker_store_prefix, "${local.sagemaker_store_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadWriteTheStore"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.sagemaker_data_bucket}/${local.sagemaker_store_prefix}/*"]
  }

  statement {
    sid       = "PullThePipelineImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [local.sagemaker_pipeline_image]
  }

  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "JobLogs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = local.sagemaker_log_groups
  }

  statement {
    sid       = "ProjectKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

output "sagemaker_pipeline_role_arn" {
  description = "SAGEMAKER_PIPELINE_ROLE_ARN of orchestration/sagemaker/submit.py: the role SageMaker Pipelines runs the pipeline with."
  value       = aws_iam_role.sagemaker_pipeline.arn
}

output "sagemaker_job_role_arn" {
  description = "SAGEMAKER_JOB_ROLE_ARN of `make sagemaker-definition`: the role the stages' jobs run with."
  value       = aws_iam_role.sagemaker_job.arn
}

output "sagemaker_pipeline_store" {
  description = "PIPELINE_STORE of `make sagemaker-definition`: where the runs' artefacts go (runs/<execution id>/, persist/)."
  value       = local.sagemaker_store
}

output "sagemaker_pipeline_parameters" {
  description = "Pipeline parameters this environment allows (submit.py --parameter NAME=VALUE): instance types and volume size."
  value = {
    ProcessingInstanceType = var.sagemaker_processing_instance_types[0]
    TrainingInstanceType   = var.sagemaker_training_instance_types[0]
    VolumeSizeGB           = tostring(var.sagemaker_volume_size_gb)
  }
}
