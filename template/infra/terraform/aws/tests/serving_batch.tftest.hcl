# serving = batch: the scheduled ECS Fargate scoring job, planned against a mocked AWS provider with one environment's
# values (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

mock_provider "aws" {
  source = "./tests/mocks"
}

# CD deploys by digest (production refuses a tag alone).
variables {
  image_digest = "sha256:c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
}

run "first_apply_creates_no_serving_resources" {
  command = plan

  variables {
    image_tag = ""
  }

  assert {
    condition = (
      length(aws_scheduler_schedule.batch) == 0 && length(aws_ecs_task_definition.batch) == 0
      && length(aws_vpc_endpoint.interface) == 0 && output.service_url == ""
    )
    error_message = "the schedule, the task or the interface endpoints are planned before an image tag is given"
  }
}

run "deploy_of_an_image_tag" {
  command = plan

  variables {
    image_tag = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
  }

  assert {
    condition = (
      length(aws_scheduler_schedule.batch) == 1 && aws_scheduler_schedule.batch[0].schedule_expression == var.batch_schedule
      && output.service_url == "${var.project}-${var.environment}-batch"
    )
    error_message = "a deploy does not plan the schedule of envs/<environment>.tfvars (service_url is its name)"
  }

  assert {
    condition = (
      aws_ecs_task_definition.batch[0].cpu == tostring(var.batch_task_cpu) && aws_ecs_task_definition.batch[0].memory == tostring(var.batch_task_memory)
      && jsonencode(jsondecode(aws_ecs_task_definition.batch[0].container_definitions)[0].entryPoint) == jsonencode(["python", "-m", "${var.package_name}.batch"])
      && jsondecode(aws_ecs_task_definition.batch[0].container_definitions)[0].readonlyRootFilesystem
      && contains(jsondecode(aws_ecs_task_definition.batch[0].container_definitions)[0].environment, { name = "BATCH_INPUT_URI", value = "s3://${var.project}-data-${var.environment}/${var.batch_input_key}" })
    )
    error_message = "the task does not run `python -m <package>.batch` read-only with the environment's CPU and memory"
  }

  assert {
    condition = alltrue([
      for target in aws_scheduler_schedule.batch[0].target : alltrue([
        for ecs in target.ecs_parameters : ecs.launch_type == "FARGATE" && ecs.task_count == 1 && alltrue([
          for network in ecs.network_configuration : !network.assign_public_ip
        ])
      ]) && alltrue([for retry in target.retry_policy : retry.maximum_retry_attempts == 2])
    ])
    error_message = "the schedule must start one Fargate task without a public IP and retry twice"
  }

  assert {
    condition     = alltrue([for flex in aws_scheduler_schedule.batch[0].flexible_time_window : flex.mode == "OFF"])
    error_message = "the batch job must start at its scheduled time"
  }

  assert {
    condition     = one([for statement in data.aws_iam_policy_document.batch_task.statement : statement.actions if statement.sid == "WriteOutputRejectsAndValidationReport"]) == toset(["s3:PutObject", "s3:GetObject", "s3:DeleteObject"])
    error_message = "the task must write, read and delete in its output folder: the commit renames <output>.partial (a copy and a delete on S3)"
  }
}

run "spark_engine_runs_the_job_on_emr_serverless" {
  command = plan

  variables {
    image_tag    = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
    batch_engine = "spark"
  }

  assert {
    condition = (
      length(aws_emrserverless_application.batch) == 1 && aws_emrserverless_application.batch[0].type == "spark"
      && aws_emrserverless_application.batch[0].release_label == var.spark_release_label
      && alltrue([for image in aws_emrserverless_application.batch[0].image_configuration : endswith(image.image_uri, ":${var.image_tag}-spark")])
      && alltrue([for capacity in aws_emrserverless_application.batch[0].maximum_capacity : capacity.cpu == "${var.spark_max_vcpu} vCPU"])
      && alltrue([for stop in aws_emrserverless_application.batch[0].auto_stop_configuration : stop.enabled])
    )
    error_message = "the EMR Serverless application must run the image Dockerfile.spark builds, capped, and stop when idle"
  }

  assert {
    condition = alltrue([
      for target in aws_scheduler_schedule.batch[0].target : (
        target.arn == "arn:aws:scheduler:::aws-sdk:emrserverless:startJobRun" && length(target.ecs_parameters) == 0
      )
      ]) && local.spark_job_run.JobDriver.SparkSubmit.EntryPoint == "local:///opt/app/score.py" && jsonencode(local.spark_job_run.JobDriver.SparkSubmit.EntryPointArguments) == jsonencode([
      "--input", "s3://${var.project}-data-${var.environment}/${var.batch_input_key}",
      "--output", "s3://${var.project}-data-${var.environment}/${var.batch_output_key}",
    ]) && local.spark_job_run.ClientToken == "<aws.scheduler.execution-id>"
    error_message = "the schedule must start one idempotent EMR Serverless job run of score.py on the batch input and output"
  }

  assert {
    condition = (
      length(aws_iam_role.spark_job) == 1
      && length(aws_security_group.spark) == 1 && length(aws_iam_role_policy.spark_job) == 1
    )
    error_message = "the Spark job needs its own role, policy and security group"
  }
}
