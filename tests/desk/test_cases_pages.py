"""The case form, the case list and recordings (HTTP level)."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bridge.db.models import Call, CallDisposition, Case, CaseEvent, ForumOutbox
from bridge.desk.recordings import recording_path
from tests.desk.conftest import CALLER_NUMBER, LINKEDID, csrf_of, valid_form
from tests.wav_files import wav_bytes


def count(db, model) -> int:
    with db.session(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(model))


def post_case(client, form: dict, token: str | None = None):
    token = token or csrf_of(client.get("/desk/cases/new").text)
    return client.post("/desk/cases", data={"csrf_token": token, **form})


def test_form_from_a_call_is_prefilled(operator):
    page = operator.get(f"/desk/cases/new?call={LINKEDID}")
    assert page.status_code == 200
    assert f'name="call_linkedid" value="{LINKEDID}"' in page.text
    assert 'name="caller_phone" value="139 1234 5678"' in page.text
    assert "公开部分：发到论坛" in page.text and "内部部分：只留在热线" in page.text
    assert 'data-draft-key="hotline-desk:draft:1764133200.42"' in page.text
    assert "衢州绿色产业集聚区管委会" in page.text  # the units to choose from
    assert '"sgaj"' in page.text  # pinyin initials for the search box (the units' data)
    walk_in = operator.get("/desk/cases/new")
    assert 'data-draft-key="hotline-desk:draft:new"' in walk_in.text and 'name="channel"' in walk_in.text


def test_empty_form_shows_every_message_beside_its_field_and_stores_nothing(operator, db):
    response = post_case(operator, {"call_linkedid": "", "caller_surname": "", "title": "", "description": "太短"})
    assert response.status_code == 422
    text = response.text
    assert "案件尚未登记：请修改下面标出的内容。" in text
    for field, message in [("caller_surname", "请填写姓。"), ("caller_honorific", "请填写称呼。"),
                           ("caller_phone", "请填写联系电话。"),
                           ("department", "请选择责任单位：输入单位名称、拼音首字母或常用叫法（如 城管、交警），"
                                          "然后在列表中点击该单位或按回车键。"),
                           ("title", "请填写标题。"), ("description", "问题描述至少要 10 个字（现在 2 个字）。")]:
        assert f'<span class="error" id="error-{field}" data-field="{field}" role="alert">{message}</span>' in text
    assert 'name="caller_surname" value="" size="6" maxlength="16" aria-invalid="true"' in text
    assert "太短</textarea>" in text  # what was typed stays
    assert count(db, Case) == 0


def test_a_unit_only_typed_in_the_search_box_is_no_choice(operator, db):
    """The bug of issue 11: 综合执法 typed, no unit chosen: refused beside the unit, nothing stored."""
    response = post_case(operator, valid_form(department="", unit_search="综合执法"))
    assert response.status_code == 422
    assert ('<span class="error" id="error-department" data-field="department" role="alert">'
            "“综合执法”只是输入在搜索框里，还没有选定：请在列表中点击该单位，或按回车键选定。</span>") in response.text
    assert 'name="unit_search" type="search" autocomplete="off" value="综合执法"' in response.text
    assert (count(db, Case), count(db, CaseEvent), count(db, ForumOutbox)) == (0, 0, 0)


def test_a_unit_the_search_box_no_longer_finds_is_refused_with_the_other_problems(operator, db):
    """zhzf chose 市综合行政执法局, then 公安 was typed: the operator was after another unit."""
    response = post_case(operator, valid_form(department="CITY-ZHZFJ", unit_search="公安", title=""))
    assert response.status_code == 422
    assert ("已选单位是“市综合行政执法局”，但搜索框中的“公安”找不到它：请重新选择单位，或清空搜索框。"
            in response.text)
    assert '<span class="error" id="error-title" data-field="title" role="alert">请填写标题。</span>' in response.text
    assert 'id="unit-chosen-name" data-code="CITY-ZHZFJ">市综合行政执法局</strong>' in response.text
    assert (count(db, Case), count(db, ForumOutbox)) == (0, 0)


def test_a_chosen_unit_the_search_still_finds_is_filed(operator, db):
    # 城管 is a synonym of 市综合行政执法局; zhzf the initials of 综合执法
    for query in ("城管", "zhzf", ""):
        response = post_case(operator, valid_form(department="CITY-ZHZFJ", unit_search=query, call_linkedid=""))
        assert response.status_code == 303, query
    with db.session(readonly=True) as session:
        assert [c.department.code for c in session.scalars(select(Case))] == ["CITY-ZHZFJ"] * 3


def test_the_form_carries_its_own_messages_in_the_page_language(operator):
    page = operator.get("/desk/cases/new")
    messages = json.loads(re.search(r'<script type="application/json" id="form-messages">(.*?)</script>',
                                    page.text, re.S).group(1))
    assert messages["required"]["caller_surname"] == "请填写姓。"
    assert messages["too_short"]["description"] == "问题描述至少要 10 个字（现在 {length} 个字）。"
    assert messages["unit"]["only_typed"].startswith("“{query}”只是输入在搜索框里")
    assert " novalidate" in page.text and 'id="form-actions"' in page.text
    english = operator.get("/desk/cases/new", headers={"Accept-Language": "en"}).text
    assert '"caller_surname": "Please fill in the surname."' in english


def test_invalid_values_keep_what_was_typed(operator, db):
    response = post_case(operator, valid_form(caller_phone="12345", sms_consent="true", department="NOPE"))
    assert response.status_code == 422
    assert "“12345”不是有效的中国电话号码" in response.text
    assert "没有代码为“NOPE”的单位" in response.text
    assert 'value="朱"' in response.text and "路口垃圾堆积无人清理" in response.text
    assert count(db, Case) == 0


def test_privacy_guard(operator, db):
    form = valid_form(description="朱小红说东港三路的垃圾堆了三天，请打 13912345678 联系她。",
                      title="身份证 330802199001011234 的垃圾问题")
    response = post_case(operator, form)
    assert response.status_code == 422
    text = response.text
    assert 'id="privacy-alert"' in text and "公开部分含有个人信息" in text
    assert ("问题描述中含有来电人的姓名“朱小红”，请删除：这部分内容会公开发到论坛上。 "
            "问题描述中含有电话号码“13912345678”，请删除：这部分内容会公开发到论坛上。") in text
    assert 'id="error-description"' in text and 'id="error-title"' in text
    assert "身份证号码“330802199001011234”" in text
    assert count(db, Case) == 0


def test_filing_stores_the_case_and_publishes_it(operator, desk_app, db, monkeypatch):
    received = []
    monkeypatch.setattr(desk_app.state.live, "publish", received.append)
    response = post_case(operator, valid_form())
    assert response.status_code == 303
    year = datetime.now(timezone(timedelta(hours=8))).year
    number = f"96811-{year}-000001"
    assert response.headers["location"].startswith(f"/desk/cases/{number}?filed=1&draft=hotline-desk")
    assert received[0].topic == "case" and received[0].data["number"] == number
    assert (count(db, Case), count(db, CaseEvent), count(db, ForumOutbox)) == (1, 1, 1)
    page = operator.get(response.headers["location"])
    assert f"案件 {number} 已登记" in page.text
    assert 'data-clear-draft="hotline-desk:draft:1764133200.42"' in page.text
    assert "朱女士" in page.text and "排队待发" in page.text
    with db.session(readonly=True) as session:
        case = session.scalar(select(Case))
        assert case.created_by.username == "operator" and case.call.linkedid == LINKEDID
        assert case.callback_wanted is True and case.sms_consent is False


def test_unchecked_boxes_are_false(operator, db):
    form = valid_form(call_linkedid="", channel="walk_in")
    form.pop("callback_wanted")
    assert post_case(operator, form).status_code == 303
    with db.session(readonly=True) as session:
        case = session.scalar(select(Case))
        assert case.callback_wanted is False and case.channel.value == "walk_in" and case.call_id is None


def test_case_list_filters_search_and_colours(operator, db):
    assert post_case(operator, valid_form()).status_code == 303
    assert post_case(operator, valid_form(call_linkedid="", caller_phone="0570-1234567",
                                          department="CITY-GAJ", title="噪音扰民")).status_code == 303
    page = operator.get("/desk/cases")
    assert page.status_code == 200
    assert "共 2 件" in page.text
    assert page.text.count('class="case-row blue"') == 2
    assert "噪音扰民" in page.text and "路口垃圾堆积无人清理" in page.text
    rows = operator.get("/desk/cases/rows?q=13912345678").text
    assert "共 1 件" in rows and "路口垃圾堆积无人清理" in rows and "噪音扰民" not in rows
    rows = operator.get("/desk/cases/rows?department=CITY-GAJ").text
    assert "噪音扰民" in rows and "路口垃圾" not in rows
    assert "共 2 件" in operator.get("/desk/cases/rows?mine=1&today=1&state=queued").text
    assert "没有符合条件的案件" in operator.get("/desk/cases/rows?state=accepted").text
    assert "没有符合条件的案件" in operator.get("/desk/cases/rows?overdue=1").text
    year = datetime.now(timezone(timedelta(hours=8))).year
    assert "共 1 件" in operator.get(f"/desk/cases/rows?q=96811-{year}-000002").text


def test_overdue_and_accepted_colours(operator, db):
    assert post_case(operator, valid_form()).status_code == 303
    with db.session() as session:
        case = session.scalar(select(Case))
        case.deadline_at = datetime.now(timezone.utc) - timedelta(hours=2)
        case.state = case.state.__class__("accepted")
    rows = operator.get("/desk/cases/rows").text
    assert 'class="case-row green overdue"' in rows and "超期 2 小时" in rows


def test_recording_of_a_call(operator, db, desk_config):
    folder = desk_config.path(desk_config.pbx.recordings_dir)
    (folder / "msg-77.wav").write_bytes(wav_bytes())
    now = datetime.now(timezone.utc)
    with db.session() as session:
        session.add(Call(linkedid="77.1", caller_number="13800001111", arrived_at=now - timedelta(minutes=30),
                         disposition=CallDisposition.AFTER_HOURS_MESSAGE,
                         message_file="/instances/abc/recordings/msg-77"))
        session.add(Call(linkedid="78.1", caller_number="13800002222", arrived_at=now - timedelta(minutes=10),
                         disposition=CallDisposition.ABANDONED, queue_wait_s=95,
                         message_file="../../../etc/passwd"))
    audio = operator.get("/desk/recordings/77.1")
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert audio.content.startswith(b"RIFF")
    assert operator.get("/desk/recordings/78.1").status_code == 404
    assert operator.get("/desk/recordings/nope").status_code == 404


def test_recording_path_stays_inside_the_folder(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.wav").write_bytes(b"x")
    assert recording_path(tmp_path, "/var/spool/asterisk/monitor/a.wav") == tmp_path / "a.wav"
    assert recording_path(tmp_path, "/x/recordings/sub/b") == tmp_path / "sub" / "b.wav"
    assert recording_path(tmp_path, "a") == tmp_path / "a.wav"
    assert recording_path(tmp_path, "../a.wav") is None
    assert recording_path(tmp_path, "/x/recordings/../../etc/passwd") is None
    assert recording_path(tmp_path, "") is None


def test_earlier_cases_suggest_units_on_the_next_form(operator):
    assert post_case(operator, valid_form()).status_code == 303
    page = operator.get(f"/desk/cases/new?phone={CALLER_NUMBER}").text
    assert "此来电人以前的案件：" in page
    assert 'class="suggest" data-code="CITY-LJQ"' in page


def test_a_connected_call_pops_again_after_a_reload(operator, db):
    now = datetime.now(timezone.utc)
    with db.session() as session:
        session.add(Call(linkedid="80.1", caller_number=CALLER_NUMBER, arrived_at=now - timedelta(seconds=100),
                         answered_at=now - timedelta(seconds=25), queue_wait_s=14.0, extension="8001",
                         disposition=CallDisposition.IN_PROGRESS))
        session.add(Call(linkedid="80.2", caller_number="13800003333", arrived_at=now, extension="8002",
                         disposition=CallDisposition.IN_PROGRESS))
    desk = operator.get("/desk/").text
    assert 'class="call-pop" data-linkedid="80.1" data-kind="connected"' in desk
    assert ">菜单 1:01 · 排队 14 秒</span>" in desk  # 75 s before the answer, 14 of them in the queue
    assert "80.2" not in desk
    assert "为此来电建案" in desk


def test_case_detail_fragment_for_live_refresh(operator):
    location = post_case(operator, valid_form()).headers["location"]
    number = location.split("?")[0].rsplit("/", 1)[1]
    fragment = operator.get(f"/desk/cases/{number}", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text and 'id="case-state"' in fragment.text
    assert operator.get("/desk/cases/96811-2026-999999").status_code == 404


# ------------------------------------------------------------ the best time to call back


def site_day(days: int = 0) -> str:
    return (datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=days)).isoformat()


def case_number(response) -> str:
    assert response.status_code == 303, response.text
    return response.headers["location"].split("?")[0].rsplit("/", 1)[1]


def test_the_automated_voice_callback_is_a_box_to_tick_stored_and_shown(operator, db):
    page = operator.get("/desk/cases/new").text
    assert '<input type="checkbox" name="voice_callback" value="true" > 自动语音回访：电话播报答复内容' in page
    number = case_number(post_case(operator, valid_form(voice_callback="true")))
    with db.session(readonly=True) as session:
        assert session.scalar(select(Case)).voice_callback is True
    assert '<dd id="case-voice-callback">是</dd>' in operator.get(f"/desk/cases/{number}").text
    refused = post_case(operator, valid_form(voice_callback="true", callback_wanted=None, call_linkedid="",
                                             channel="walk_in"))
    assert refused.status_code == 422
    assert "自动语音回访也是回访" in refused.text
    assert 'name="voice_callback" value="true" checked' in refused.text  # kept as ticked


def test_the_form_offers_four_clickable_choices_any_time_preselected_and_an_optional_day(operator):
    page = operator.get(f"/desk/cases/new?call={LINKEDID}").text
    radios = re.findall(r'<label><input type="radio" name="best_time" value="(\w+)" ?(checked)?> (\S+)</label>', page)
    assert radios == [("morning", "", "上午"), ("afternoon", "", "下午"), ("evening", "", "晚上"),
                      ("any", "checked", "任何时间")]
    assert "最早回电日期（可不填）" in page
    assert (f'<input type="date" name="callback_not_before" value="" min="{site_day()}" max="{site_day(60)}">'
            in page)
    english = operator.get("/desk/cases/new?lang=en").text
    assert re.findall(r'name="best_time" value="\w+" ?(?:checked)?> ([\w ]+)</label>', english) == [
        "Morning", "Afternoon", "Evening", "Any time"]


def test_the_clicked_choice_and_day_are_stored_and_shown_in_the_page_language(operator, db):
    number = case_number(post_case(operator, valid_form(best_time="evening", callback_not_before=site_day(2))))
    with db.session(readonly=True) as session:
        case = session.scalar(select(Case))
        assert (case.best_time_choice.value, case.callback_not_before.isoformat(), case.best_time) == (
            "evening", site_day(2), "")
    page = operator.get(f"/desk/cases/{number}").text
    assert f'<dd id="case-best-time">晚上 · {site_day(2)} 起</dd>' in page
    english = operator.get(f"/desk/cases/{number}?lang=en").text
    assert f'<dd id="case-best-time">Evening · not before {site_day(2)}</dd>' in english


def test_no_choice_clicked_is_any_time(operator, db):
    case_number(post_case(operator, valid_form(best_time=None)))
    with db.session(readonly=True) as session:
        case = session.scalar(select(Case))
        assert (case.best_time_choice.value, case.callback_not_before) == ("any", None)


def test_a_day_in_the_past_or_too_far_is_refused_beside_its_field_keeping_the_choice(operator, db):
    response = post_case(operator, valid_form(best_time="morning", callback_not_before=site_day(-1)))
    assert response.status_code == 422
    text = response.text
    assert (f'<span class="error" id="error-callback_not_before" data-field="callback_not_before" role="alert">'
            f"最早回电日期 {site_day(-1)} 已经过去，请选今天或以后的日子。</span>") in text
    assert f'name="callback_not_before" value="{site_day(-1)}"' in text and 'aria-invalid="true"' in text
    assert '<input type="radio" name="best_time" value="morning" checked>' in text
    far = post_case(operator, valid_form(callback_not_before=site_day(61)))
    assert far.status_code == 422 and "最早回电日期最多只能在 60 天以内" in far.text
    free_text = post_case(operator, valid_form(best_time="周三下午三点"))  # what the old form sent
    assert free_text.status_code == 422
    assert "方便回电的时间只能是以下之一：morning, afternoon, evening, any。" in free_text.text
    assert count(db, Case) == 0


def test_an_old_case_shows_what_was_written_read_only(operator, db):
    number = case_number(post_case(operator, valid_form()))
    with db.session() as session:
        old = session.scalar(select(Case))
        old.best_time_choice, old.best_time = None, "周三下午三点"
    page = operator.get(f"/desk/cases/{number}").text
    assert '<dd id="case-best-time">任何时间 <span class="note">原填写：周三下午三点</span></dd>' in page
    english = operator.get(f"/desk/cases/{number}?lang=en").text
    assert '<dd id="case-best-time">Any time <span class="note">Written before: 周三下午三点</span></dd>' in english
