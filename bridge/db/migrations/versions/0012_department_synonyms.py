"""Units get everyday names: ``departments.synonyms`` (space separated, like ``keywords``).

The desk's unit picker searches them (城管 finds 市综合行政执法局).  The column is added with
``ALTER TABLE ... ADD COLUMN`` on both backends (no batch rebuild of ``departments``).  A site
that already imported the shipped units gets the shipped synonyms for the units of the shipped
codes (a code always names the same unit); its own units start without, to be given theirs with
``hotline-bridge departments import``.  Written by hand; it does not import the models.

Revision ID: 0012_department_synonyms
Revises: 0011_users_active_extension
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_department_synonyms"
down_revision: str | None = "0011_users_active_extension"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of the shipped file's synonyms at this revision: code -> synonyms.
SHIPPED_SYNONYMS = {
    "CITY-FGW": "发改委 发改局",
    "CITY-JXJ": "经信局",
    "CITY-KJJ": "科技局",
    "CITY-GAJ": "派出所 警察",
    "CITY-JJZD": "交警 交警队 交警支队 交管",
    "CITY-RSJ": "人社局 社保局 劳动局 劳动监察",
    "CITY-ZRGHJ": "自然资源局 资规局 国土局",
    "CITY-STHJJ": "环保局 环保",
    "CITY-ZJJ": "住建局 住建 房管局 物业 物业管理",
    "CITY-JTJ": "交通局",
    "CITY-NYNCJ": "农业局 农办",
    "CITY-WGLJ": "文旅局 文化局 广电局",
    "CITY-WJW": "卫健委 卫生局 卫计委",
    "CITY-TYJRJ": "退役军人局",
    "CITY-YJGLJ": "应急局 安监局 安监",
    "CITY-GZW": "国资委",
    "CITY-SCJGJ": "市场监管局 市监局 工商局 工商 质监局 食药监",
    "CITY-YBJ": "医保局",
    "CITY-ZHZFJ": "城管 城管局 综合执法 综合执法局 城市管理局 环卫 环卫处 市容",
    "CITY-JGSWJ": "机关事务局 机管局",
    "CITY-DSJJ": "大数据局",
    "CITY-XZFWZX": "政务服务中心",
    "CITY-RFB": "人防办",
    "CITY-GXS": "供销社",
    "CITY-QXJ": "气象台",
    "CITY-SWJ": "国税 地税",
    "CITY-YCJ": "烟草局 烟草公司",
    "CITY-YZGLJ": "邮管局",
    "CITY-GDGS": "电力局 供电局 电力公司 国网",
    "CITY-SYJT": "自来水公司 水务集团 水务",
    "CITY-TRQGS": "燃气公司 煤气公司",
    "CITY-YDGS": "中国移动",
    "CITY-DXGS": "中国电信",
    "CITY-GJGS": "公交公司 公交集团",
    "CITY-GJJ": "公积金中心",
    "CITY-XFZD": "消防队 消防支队",
    "CITY-ZY": "中院 中级法院",
    "CITY-GDZT": "电视台 广电总台",
    "CITY-LJQ": "高新区",
    "CITY-JTJT": "交投集团 交投",
    "CITY-CTJT": "城投集团 城投",
    "CITY-CL": "残联",
    "CITY-TSW": "团市委",
    "CITY-FL": "妇联",
    "CITY-ZYYY": "中医院",
    "CITY-JKZX": "疾控中心 疾控 防疫站",
    "CITY-GLZX": "公路局 运管处 运管",
    "CITY-GHZX": "港航局",
    "CITY-BDCZX": "不动产登记中心 房产登记",
    "CITY-GGZY": "招投标中心",
    "CITY-JRB": "金融办 金融局",
    "CITY-RMYH": "人行 央行",
    "CITY-DAG": "档案局",
    "GOV-KC": "柯城区政府",
    "GOV-QJ": "衢江区政府",
    "GOV-JS": "江山市政府",
    "GOV-LY": "龙游县政府",
    "GOV-CS": "常山县政府",
    "GOV-KH": "开化县政府",
}


def upgrade() -> None:
    op.execute("ALTER TABLE departments ADD COLUMN synonyms TEXT NOT NULL DEFAULT ''")
    departments = sa.table("departments", sa.column("code", sa.String), sa.column("synonyms", sa.Text))
    for code, synonyms in SHIPPED_SYNONYMS.items():
        op.execute(departments.update().where(departments.c.code == code).values(synonyms=synonyms))


def downgrade() -> None:
    op.execute("ALTER TABLE departments DROP COLUMN synonyms")
