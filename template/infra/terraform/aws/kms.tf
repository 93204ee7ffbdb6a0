# One customer-managed key per environment encrypts buckets, registry, log groups, the alarm topic and serving
# volumes. IAM policies grant its use per role; the key policy only delegates to IAM and lets the AWS services
# that encrypt on their own behalf (CloudWatch Logs, alarms and events publishing to SNS) use it.

resource "aws_kms_key" "main" {
  description             = "${local.name}: data, models, images, logs and alerts"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = local.is_production ? 30 : 7
  policy                  = local.kms_key_policy
}

resource "aws_kms_alias" "main" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.main.key_id
}

# In a key policy, Resource "*" means this key. The account statement hands control to IAM policies (which grant
# the key per role, see identity.tf and the serving files); the service statements are limited to this account.
locals {
  kms_key_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersKeyThroughIam"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncryptsThisAccountsLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"
          }
        }
      },
      {
        Sid       = "AlarmsAndEventsPublishToTheEncryptedTopic"
        Effect    = "Allow"
        Principal = { Service = ["cloudwatch.amazonaws.com", "events.amazonaws.com"] }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
    ]
  })
}
